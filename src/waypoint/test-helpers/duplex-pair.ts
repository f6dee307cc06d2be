/**
 * createDuplexPair: two connected in-memory Duplex streams (Node 20 has no stream.duplexPair).
 * What one side writes the other reads; end() on one side is EOF on the other; destroying one
 * side destroys the other. Each side also has the few socket methods node:http calls on a
 * connection (setTimeout with a real idle timer, setNoDelay, setKeepAlive, ref, unref), so a
 * side can be handed to an http.Server, an http2 server or an http.Agent as a socket.
 *
 * Invariants:
 * - backpressure: a write is acknowledged only once the peer's readable buffer accepted it
 *   (push returned true) or the peer asked for more (_read), so memory is bounded by the
 *   readable high-water mark of each side;
 * - at most one write per side is outstanding (Writable serializes _write calls);
 * - the idle timer, when set, is re-armed by every read and write and never keeps the process
 *   alive.
 */
import { Duplex } from 'node:stream';

export class PairSocket extends Duplex {
  peer: PairSocket | undefined;
  private pendingWrite: (() => void) | undefined;
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Socket-like fields some callers read; informative only. */
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {
    const writer = this.peer;
    const cb = writer?.pendingWrite;
    if (writer && cb) {
      writer.pendingWrite = undefined;
      cb();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    if (!peer || peer.destroyed) {
      cb(Object.assign(new Error('the other side of the pair is closed'), { code: 'EPIPE' }));
      return;
    }
    this.touch();
    peer.touch();
    if (peer.push(chunk)) cb();
    else this.pendingWrite = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    if (peer && !peer.destroyed) peer.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    const peer = this.peer;
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    pending?.();
    if (peer && !peer.destroyed) {
      // The peer sees a reset (as a TCP RST would look): no error object, just a close.
      const w = peer.pendingWrite;
      peer.pendingWrite = undefined;
      w?.();
      process.nextTick(() => peer.destroy());
    }
    cb(err);
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb) this.once('timeout', cb);
    this.touch();
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  private touch(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.idleMs <= 0 || this.destroyed) return;
    this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
    this.idleTimer.unref();
  }
}

export function createDuplexPair(): [PairSocket, PairSocket] {
  const a = new PairSocket();
  const b = new PairSocket();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
