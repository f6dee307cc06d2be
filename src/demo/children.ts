/**
 * Child meshd processes (ztunnels, waypoints) started by `meshd demo`: JSON log lines are kept
 * (for --check) and copied to a log file; callers can await a line, and stop the child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export class ChildDaemon {
  readonly lines: LogLine[] = [];
  private readonly stderr: string[] = [];
  private readonly waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  exitCode: number | null = null;
  /** The signal that ended the process, if one did. */
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    logFile?: WriteStream,
    /** Where its output is copied, for messages that point a user at it. */
    readonly logPath?: string,
  ) {
    let buf = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      logFile?.write(chunk);
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.push(text);
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      logFile?.write(chunk);
      this.stderr.push(chunk);
    });
    this.exited = once(child, 'exit').then(([code, signal]) => {
      this.exitCode = code as number | null;
      this.exitSignal = signal as NodeJS.Signals | null;
      logFile?.end();
      return this.exitCode;
    });
  }

  private push(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: text, raw: true };
    }
    this.lines.push(line);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (w?.pred(line)) {
        this.waiters.splice(i, 1);
        w.resolve(line);
      }
    }
  }

  /** The first log line (already seen or future) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 20_000, what = 'log line'): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const entry = {
        pred,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const fail = (why: string) => {
        const i = this.waiters.indexOf(entry);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        clearTimeout(timer);
        reject(new Error(`${this.name}: ${why} while waiting for ${what}; last output:\n${this.tail()}`));
      };
      const timer = setTimeout(() => fail('timed out'), timeoutMs);
      this.waiters.push(entry);
      void this.exited.then((code) => fail(`exited with code ${String(code)}`));
    });
  }

  waitForMsg(msg: string | RegExp, timeoutMs?: number): Promise<LogLine> {
    const pred = (l: LogLine) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg ?? '')));
    return this.waitForLog(pred, timeoutMs, `"${String(msg)}"`);
  }

  accessLogs(): LogLine[] {
    return this.lines.filter((l) => l.scope === 'access');
  }

  tail(n = 12): string {
    return [
      ...this.lines.slice(-n).map((l) => (l.raw ? String(l.msg) : JSON.stringify(l))),
      ...this.stderr.slice(-5),
    ].join('\n');
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitCode === null && this.child.exitCode === null) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 8_000): Promise<void> {
    if (this.exitCode !== null || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): Promise<number | null> {
    if (this.exitCode === null && this.child.exitCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }
}

export interface SpawnOptions {
  /** Script to run with this Node (dist/main.js). */
  main: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logPath?: string;
}

export function spawnMeshd(name: string, opts: SpawnOptions): ChildDaemon {
  const child = spawn(process.execPath, [opts.main, ...opts.args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ChildDaemon(
    name,
    child,
    opts.logPath ? createWriteStream(opts.logPath) : undefined,
    opts.logPath,
  );
}
