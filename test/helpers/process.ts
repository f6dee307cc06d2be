/**
 * Real daemon processes for integration tests: `node dist/main.js <args>` with JSON logs on
 * stdout, collected line by line so tests can await a log line (no sleeps) and assert on access
 * logs. Every process started here is killed by `stopAll()` (call it in afterEach/afterAll).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildDaemon, spawnMeshd } from '../../src/demo/children.js';

export type { LogLine } from '../../src/demo/children.js';
export type Daemon = ChildDaemon;

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = join(REPO, 'dist', 'main.js');

const running = new Set<Daemon>();

export function startDaemon(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { netns?: string } = {},
): Daemon {
  // In a network namespace: `ip netns exec` execs node in place, so the pid is the daemon's.
  const d = opts.netns
    ? new ChildDaemon(
        name,
        spawn('ip', ['netns', 'exec', opts.netns, process.execPath, MAIN, ...args], {
          cwd: REPO,
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      )
    : spawnMeshd(name, { main: MAIN, args, cwd: REPO, env });
  running.add(d);
  void d.exited.then(() => running.delete(d));
  return d;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((d) => d.kill()));
}

/** Run the CLI to completion. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}
