// Per-process memory and CPU from Linux /proc, for the benches' "proxies only" figures.
//
// Memory, three ways, because a Node process's RSS is mostly not its own:
// - RSS (VmRSS): every resident page mapped, including the node binary's text and shared
//   libraries, which N copies of the same process share (the kernel keeps one copy);
// - anonymous RSS (RssAnon): the process's private memory (V8 heap, malloc, stacks), the part
//   that really grows with each extra process;
// - PSS (smaps_rollup Pss): each shared page divided among the processes that map it, so the
//   sum of PSS over a set of processes is what that set really costs the node.
// The sum over a set also gets `shared1` (see sumMemory).
// CPU: utime + stime from /proc/<pid>/stat, in clock ticks (USER_HZ, 100 on Linux).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond;
function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // USER_HZ is 100 on every mainstream Linux build
    }
  }
  return ticksPerSecond;
}

export function procfsAvailable() {
  try {
    readFileSync('/proc/self/smaps_rollup', 'utf8');
    return true;
  } catch {
    return false;
  }
}

function kbField(text, name) {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`/proc field ${name} missing`);
  return Number(m[1]);
}

/** Memory of one process in KiB: { rss, anon, file, shmem, pss, pssAnon, pssFile }. */
export function readMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return {
    rss: kbField(status, 'VmRSS'),
    anon: kbField(status, 'RssAnon'),
    file: kbField(status, 'RssFile'),
    shmem: kbField(status, 'RssShmem'),
    pss: kbField(rollup, 'Pss'),
    pssAnon: kbField(rollup, 'Pss_Anon'),
    pssFile: kbField(rollup, 'Pss_File'),
  };
}

/** CPU seconds (user + system) used by one process so far. */
export function readCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14 and stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / clockTicks();
}

const MEMORY_KEYS = ['rss', 'anon', 'file', 'shmem', 'pss', 'pssAnon', 'pssFile', 'shared1'];

/**
 * Sum of readMemory over pids (KiB per field), plus `shared1`: private memory of every process
 * plus the file-backed pages counted once (the largest RssFile of the set). The processes run the
 * same binary, so their file pages are nearly the same pages; this is what the set costs the node
 * whatever else runs on it. PSS would instead also share those pages with unrelated processes
 * that map the same files (here: the load generator, the HTTP server, the peer node's proxy).
 */
export function sumMemory(pids) {
  const total = Object.fromEntries(MEMORY_KEYS.map((k) => [k, 0]));
  let maxFile = 0;
  for (const pid of pids) {
    const m = readMemory(pid);
    for (const k of MEMORY_KEYS) if (k !== 'shared1') total[k] += m[k];
    maxFile = Math.max(maxFile, m.file);
  }
  total.shared1 = total.anon + total.shmem + maxFile;
  return total;
}

/** Field-wise maximum of two memory totals. */
export function maxMemory(a, b) {
  if (!a) return b;
  return Object.fromEntries(MEMORY_KEYS.map((k) => [k, Math.max(a[k], b[k])]));
}

/** CPU seconds per pid, as a Map, to diff later with cpuSince. */
export function cpuMark(pids) {
  return new Map(pids.map((pid) => [pid, readCpuSeconds(pid)]));
}

/** CPU seconds used per pid since `mark`. */
export function cpuSince(mark) {
  return new Map([...mark].map(([pid, s]) => [pid, readCpuSeconds(pid) - s]));
}
