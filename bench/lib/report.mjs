// Shared pieces of the bench reports: the machine line, Markdown tables, number formats, and
// where charts are written.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

export function machine() {
  const c = cpus();
  return {
    date: new Date().toISOString().slice(0, 10),
    cpus: c.length,
    cpuModel: (c[0]?.model ?? 'unknown cpu').trim(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${process.platform} ${release()} ${process.arch}`,
    loadAvg1m: Math.round(loadavg()[0] * 100) / 100,
  };
}

export function machineLine(m) {
  return `${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, Node ${m.node}, ${m.os}; ${m.date}; load average ${m.loadAvg1m} at the start`;
}

/** Where a bench writes its chart: bench/results/ for full runs, bench/results/quick/ for --quick. */
export function chartPath(name, { quick, outDir }) {
  return join(outDir ?? (quick ? join(RESULTS_DIR, 'quick') : RESULTS_DIR), name);
}

export function writeChart(path, svg) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svg);
  return relative(REPO, path);
}

export function mdTable(headers, rows, align) {
  const a = align ?? headers.map((_, i) => (i === 0 ? 'l' : 'r'));
  return [
    `| ${headers.join(' | ')} |`,
    `|${a.map((x) => (x === 'r' ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** KiB → "12.3" MiB (one decimal under 100, whole numbers above). */
export function mib(kib) {
  const v = kib / 1024;
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
}

export function ms(x) {
  return x.toFixed(x >= 10 ? 1 : 2);
}

export function signedMs(x) {
  return `${x >= 0 ? '+' : '−'}${ms(Math.abs(x))}`;
}

export function pct(x) {
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)} %`;
}

export const sleep = (t) => new Promise((r) => setTimeout(r, t));
