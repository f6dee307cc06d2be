// Child processes of a bench: meshd daemons, haproxy, the bench HTTP server and the load
// generator. A ProcessGroup owns every process it starts and kills them all in stopAll(), which
// the benches call in `finally`; if the bench process itself is interrupted or exits first, the
// group SIGKILLs what is left, so no daemon outlives a failed run.
import { spawn, fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const MESHD = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export function requireDist() {
  if (!existsSync(MESHD)) throw new Error('dist/ is missing: run `npm run build` first');
}

const TAIL = 40;

/** One child process with its recent output, and log-line waiters for JSON-logging daemons. */
export class Proc {
  constructor(name, child) {
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    this.tailLines = [];
    this.waiters = [];
    this.exitCode = null;
    this.exited = once(child, 'exit').then(([code, signal]) => {
      this.exitCode = code ?? signal;
      for (const w of this.waiters.splice(0))
        w.reject(
          new Error(`${name} exited (${this.exitCode}) before "${w.what}"; last output:\n${this.tail()}`),
        );
      return this.exitCode;
    });
    let buf = '';
    const onText = (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.onLine(text);
      }
    };
    child.stdout?.setEncoding('utf8').on('data', onText);
    child.stderr?.setEncoding('utf8').on('data', onText);
  }

  onLine(text) {
    this.tailLines.push(text);
    if (this.tailLines.length > TAIL) this.tailLines.shift();
    if (this.waiters.length === 0) return;
    let line;
    try {
      line = JSON.parse(text);
    } catch {
      line = { msg: text };
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (w.pred(line)) {
        this.waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(line);
      }
    }
  }

  /** Resolves with the next log line matching `pred`. */
  waitFor(pred, what, timeoutMs = 60_000) {
    if (this.exitCode !== null)
      return Promise.reject(
        new Error(`${this.name} has exited (${this.exitCode}); last output:\n${this.tail()}`),
      );
    return new Promise((resolve, reject) => {
      const w = { pred, what, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: timed out waiting for "${what}"; last output:\n${this.tail()}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  tail() {
    return this.tailLines.slice(-15).join('\n');
  }

  async stop() {
    if (this.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export class ProcessGroup {
  constructor() {
    this.procs = new Set();
    // Last resort: never leave daemons behind if the bench process ends or is interrupted.
    this.onExit = () => {
      for (const p of this.procs) if (p.exitCode === null) p.child.kill('SIGKILL');
    };
    this.onSignal = (sig) => {
      this.onExit();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.on('exit', this.onExit);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  add(name, child) {
    const p = new Proc(name, child);
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** `node dist/main.js ...args` (a meshd daemon logging JSON to stdout). */
  meshd(name, args) {
    return this.add(
      name,
      spawn(process.execPath, [MESHD, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
  }

  /** Any program, e.g. haproxy. */
  spawn(name, command, args) {
    return this.add(name, spawn(command, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** A Node module with an IPC channel (the bench server, the load generator). */
  fork(name, modulePath, args = []) {
    // execArgv: [] so that the parent's loader flags (vitest, --input-type) are not inherited.
    return this.add(
      name,
      fork(modulePath, args, { cwd: REPO, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }),
    );
  }

  async stopAll() {
    await Promise.all([...this.procs].map((p) => p.stop()));
  }

  async close() {
    await this.stopAll();
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/** Send `msg` to a forked child and resolve with its first reply of type `reply`. */
export function request(proc, msg, reply, timeoutMs = 600_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${proc.name}: no "${reply}" reply`)), timeoutMs);
    const onMessage = (m) => {
      if (m.type === 'error') done(new Error(`${proc.name}: ${m.message}`));
      else if (m.type === reply) done(undefined, m);
    };
    const onExit = () => done(new Error(`${proc.name} exited; last output:\n${proc.tail()}`));
    const done = (err, m) => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m);
    };
    proc.child.on('message', onMessage);
    proc.child.once('exit', onExit);
    proc.child.send(msg);
  });
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
