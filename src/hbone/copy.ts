/**
 * Bidirectional copy between two Duplex streams: a TCP socket and an HTTP/2 CONNECT stream on
 * either side of HBONE, or any two Duplexes (the waypoint reuses it). It behaves as ztunnel's
 * copy_bidirectional:
 *
 * Invariants:
 * - `down` is the side the connection came from, `up` the side it goes to; bytesUp counts
 *   down→up, bytesDown counts up→down, both as read.
 * - Each direction runs on its own until it ends. EOF on a readable ends the other side's
 *   writable (TCP FIN → END_STREAM, END_STREAM → FIN), and the other direction keeps flowing, so
 *   half-closed request/response protocols work.
 * - Backpressure: a reader is paused as soon as its writer's write() returns false and resumed
 *   on 'drain'. Nothing here buffers beyond the streams' own high-water marks (plus one chunk),
 *   and HTTP/2 flow-control windows bound what a peer can push at us.
 * - Benign endings count as EOF on read and as "this direction is done" on write: reset, broken
 *   pipe, premature close, RST_STREAM with NO_ERROR, CANCEL or STREAM_CLOSED. Other errors tear
 *   both sides down (destroy) and are reported in the result.
 * - `done` resolves exactly once, when both directions are done or on abort; both streams are
 *   destroyed by then. It never rejects.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';

export interface CopyResult {
  /** Bytes read from `down` and written towards `up` (ztunnel's "received" for the server side). */
  bytesUp: number;
  /** Bytes read from `up` and written towards `down`. */
  bytesDown: number;
  /** Set when the copy ended on an error that is not a normal close, or was aborted. */
  error?: Error;
}

const BENIGN_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ENOTCONN',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_HTTP2_STREAM_CANCEL',
]);

/** Reset and broken pipe are a normal close, as ztunnel treats them (reference 2.5). */
export function isBenignCloseError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code === 'string' && BENIGN_CODES.has(code)) return true;
  // RST_STREAM(STREAM_CLOSED) reads as a broken pipe; NO_ERROR and CANCEL never surface as errors.
  return code === 'ERR_HTTP2_STREAM_ERROR' && /NGHTTP2_STREAM_CLOSED|NGHTTP2_CANCEL/.test(err.message);
}

/** One direction: src → dst. */
class Direction {
  bytes = 0;
  /** dst finished or closed: nothing more will be written. */
  done = false;
  private eof = false;

  constructor(
    private readonly src: Duplex,
    private readonly dst: Duplex,
    private readonly onDone: () => void,
  ) {}

  readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    this.bytes += chunk.length;
    if (!this.dst.write(chunk)) this.src.pause();
  };

  readonly onDrain = (): void => {
    if (!this.done && !this.eof) this.src.resume();
  };

  /** The source has nothing more to send: END_STREAM/FIN it onwards, then wait for 'finish'. */
  readonly onEof = (): void => {
    if (this.eof || this.done) return;
    this.eof = true;
    if (this.dst.destroyed || this.dst.writableFinished) this.finish();
    else if (!this.dst.writableEnded) this.dst.end();
  };

  /** The destination can take no more (finished, or closed under us). */
  readonly finish = (): void => {
    if (this.done) return;
    this.done = true;
    if (!this.src.destroyed) this.src.pause();
    this.onDone();
  };

  start(): void {
    this.src.on('data', this.onData);
    this.src.on('end', this.onEof);
    this.dst.on('drain', this.onDrain);
    this.dst.on('finish', this.finish);
    if (this.dst.destroyed || this.dst.writableFinished) this.finish();
    else if (this.src.readableEnded || this.src.destroyed) this.onEof();
    // A 'data' listener does not resume a stream that was explicitly paused (an entry that
    // paused its socket while it parsed a handshake, for example): resume it here.
    else this.src.resume();
  }
}

/** A running copy; see the module comment for its guarantees. */
export class BidiCopy {
  readonly done: Promise<CopyResult>;
  private readonly upward: Direction;
  private readonly downward: Direction;
  private settled = false;
  private error: Error | undefined;
  private resolve!: (r: CopyResult) => void;

  constructor(
    private readonly down: Duplex,
    private readonly up: Duplex,
  ) {
    this.done = new Promise((r) => (this.resolve = r));
    this.upward = new Direction(down, up, this.maybeDone);
    this.downward = new Direction(up, down, this.maybeDone);
    for (const s of [down, up]) {
      if (s instanceof net.Socket) {
        // Half-close needs the socket to stay writable after the peer's FIN.
        s.allowHalfOpen = true;
        if (!s.connecting) s.setNoDelay(true);
      }
    }
    down.on('error', this.onError);
    up.on('error', this.onError);
    down.on('close', this.onDownClose);
    up.on('close', this.onUpClose);
    this.upward.start();
    this.downward.start();
  }

  get bytesUp(): number {
    return this.upward.bytes;
  }

  get bytesDown(): number {
    return this.downward.bytes;
  }

  /** Bytes sitting in the two streams' buffers right now (for memory bounds and tests). */
  bufferedBytes(): number {
    return (
      this.down.readableLength + this.down.writableLength + this.up.readableLength + this.up.writableLength
    );
  }

  /** Tear both sides down now (for example a policy change that now denies the connection). */
  abort(reason: Error): void {
    this.fail(reason);
  }

  private readonly onError = (err: Error): void => {
    // A benign error is followed by 'close', which ends both directions on that stream.
    if (!isBenignCloseError(err)) this.fail(err);
  };

  private readonly onDownClose = (): void => {
    this.upward.onEof();
    this.downward.finish();
  };

  private readonly onUpClose = (): void => {
    this.downward.onEof();
    this.upward.finish();
  };

  private readonly maybeDone = (): void => {
    if (this.upward.done && this.downward.done) this.settle();
  };

  private fail(err: Error): void {
    if (this.settled) return;
    this.error = err;
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.down.destroy();
    this.up.destroy();
    const result: CopyResult = { bytesUp: this.upward.bytes, bytesDown: this.downward.bytes };
    if (this.error) result.error = this.error;
    this.resolve(result);
  }
}

/** Start copying between `down` (where the connection came from) and `up` (where it goes). */
export function copyBidirectional(down: Duplex, up: Duplex): BidiCopy {
  return new BidiCopy(down, up);
}
