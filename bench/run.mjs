#!/usr/bin/env node
// Bench runner: `npm run bench [-- name ...] [-- --quick]`.
// Every bench is bench/<name>.bench.mjs exporting `run({ quick, log })`, which resolves to
// `{ title, markdown, data }`. Benches measure the scenarios they compare in the same run, so
// ratios hold on a noisy shared machine. Results land in bench/results/<name>.json (data) and
// are printed as Markdown, to be recorded in bench/RESULTS.md with the machine and the date.
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const wanted = args.filter((a) => !a.startsWith('--'));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .map((f) => f.replace(/\.bench\.mjs$/, ''))
  .sort();
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
const selected = wanted.length > 0 ? wanted : all;

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
console.log(
  `# meshd bench — ${new Date().toISOString().slice(0, 10)}\n\nMachine: ${machine}${quick ? ' (quick mode: smoke figures only)' : ''}\n`,
);
mkdirSync(join(here, 'results'), { recursive: true });
let failed = false;
for (const name of selected) {
  const mod = await import(pathToFileURL(join(here, `${name}.bench.mjs`)).href);
  const started = Date.now();
  try {
    const result = await mod.run({ quick, log: (...a) => console.error(`[${name}]`, ...a) });
    console.log(`## ${result.title}\n\n${result.markdown}\n`);
    writeFileSync(
      join(here, 'results', `${name}.json`),
      JSON.stringify({ date: new Date().toISOString(), machine, quick, ...result.data }, null, 2) + '\n',
    );
  } catch (err) {
    failed = true;
    console.error(`[${name}] failed after ${Date.now() - started} ms:`, err);
  }
}
process.exit(failed ? 1 : 0);
