/**
 * Real daemon processes for integration tests: `node dist/main.js <args>` with JSON logs on
 * stdout, collected line by line so tests can await a log line (no sleeps) and assert on access
 * logs. Every process started here is killed in `stopAll()` (call it in afterEach/afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = join(REPO, 'dist', 'main.js');

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export class Daemon {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private readonly waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    let buf = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text, raw: true };
        }
        this.lines.push(line);
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          const w = this.waiters[i];
          if (w && w.pred(line)) {
            this.waiters.splice(i, 1);
            w.resolve(line);
          }
        }
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = once(child, 'exit').then(([code]) => {
      this.exitCode = code as number | null;
      return this.exitCode;
    });
  }

  /** Resolves with the first log line (already seen or future) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 20_000, what = 'log line'): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.resolve === done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.name}: timed out waiting for ${what}; last lines:\n${this.tail()}`));
      }, timeoutMs);
      const done = (l: LogLine) => {
        clearTimeout(timer);
        resolve(l);
      };
      this.waiters.push({ pred, resolve: done });
      void this.exited.then((code) => {
        if (this.waiters.some((w) => w.resolve === done)) {
          clearTimeout(timer);
          reject(
            new Error(`${this.name} exited (${code}) while waiting for ${what}; last lines:\n${this.tail()}`),
          );
        }
      });
    });
  }

  waitForMsg(msg: string | RegExp, timeoutMs?: number): Promise<LogLine> {
    const pred = (l: LogLine) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg ?? '')));
    return this.waitForLog(pred, timeoutMs, `"${String(msg)}"`);
  }

  accessLogs(): LogLine[] {
    return this.lines.filter((l) => l.scope === 'access');
  }

  tail(n = 15): string {
    const out = this.lines.slice(-n).map((l) => JSON.stringify(l));
    return [...out, ...this.stderr.slice(-5)].join('\n');
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitCode === null) this.child.kill(sig);
  }

  async stop(): Promise<void> {
    if (this.exitCode !== null || this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

const running = new Set<Daemon>();

export function startDaemon(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { netns?: string } = {},
): Daemon {
  // In a network namespace: `ip netns exec` execs node in place, so the pid is the daemon's.
  const [cmd, argv] = opts.netns
    ? ['ip', ['netns', 'exec', opts.netns, process.execPath, MAIN, ...args]]
    : [process.execPath, [MAIN, ...args]];
  const child = spawn(cmd, argv, {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const d = new Daemon(name, child);
  running.add(d);
  void d.exited.then(() => running.delete(d));
  return d;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((d) => d.stop()));
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
