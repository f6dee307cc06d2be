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
 * - Backpressure: a reader is paused once its writer holds more than a bound (the writer's
 *   high-water mark, growing to 256 KiB and then 1 MiB as a transfer proves bulk) and resumed on
 *   'drain'. Nothing here buffers beyond that bound plus one chunk per direction, and HTTP/2
 *   flow-control windows bound what a peer can push at us.
 * - Benign endings count as EOF on read and as "this direction is done" on write: reset, broken
 *   pipe, premature close, RST_STREAM with NO_ERROR, CANCEL or STREAM_CLOSED. Other errors tear
 *   both sides down (destroy) and are reported in the result.
 * - `done` resolves exactly once, when both directions are done or on abort. By then a stream
 *   that did not end cleanly both ways (or any stream, on abort or error) has been destroyed; a
 *   stream that did closes by itself, so a clean HTTP/2 close sends no RST_STREAM. It never
 *   rejects.
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

const KiB = 1024;
/** Write-buffer bounds per direction (see Direction.limit). */
const GROW_AFTER_SMALL = 128 * KiB;
const GROW_AFTER_LARGE = 10 * 1024 * KiB;
const BUFFER_MEDIUM = 256 * KiB;
const BUFFER_LARGE = 1024 * KiB;

/** One direction: src → dst. Its event handlers are the shared functions below. */
class Direction {
  bytes = 0;
  /** dst finished or closed: nothing more will be written. */
  done = false;
  private eof = false;

  constructor(
    readonly src: Duplex,
    readonly dst: Duplex,
    private readonly copy: BidiCopy,
  ) {}

  onData(chunk: Buffer): void {
    if (this.done) return;
    this.bytes += chunk.length;
    this.dst.write(chunk);
    if (this.dst.writableLength >= this.limit()) this.src.pause();
  }

  /**
   * How much may sit in dst's write buffer before we stop reading src. It grows with the bytes
   * copied, as ztunnel's buffers do (1 KiB → 16 KiB after 128 KiB → 256 KiB after 10 MiB): short
   * and idle connections stay small, bulk transfers stop and start reading less often.
   */
  private limit(): number {
    const b = this.bytes;
    const floor = this.dst.writableHighWaterMark;
    if (b < GROW_AFTER_SMALL) return floor;
    return Math.max(floor, b < GROW_AFTER_LARGE ? BUFFER_MEDIUM : BUFFER_LARGE);
  }

  onDrain(): void {
    if (!this.done && !this.eof) this.src.resume();
  }

  /** The source has nothing more to send: END_STREAM/FIN it onwards, then wait for 'finish'. */
  onEof(): void {
    if (this.eof || this.done) return;
    this.eof = true;
    if (this.dst.destroyed || this.dst.writableFinished) this.finish();
    else if (!this.dst.writableEnded) this.dst.end();
  }

  /** The destination can take no more (finished, or closed under us). */
  finish(): void {
    if (this.done) return;
    this.done = true;
    if (!this.src.destroyed) this.src.pause();
    this.copy.directionDone();
  }

  start(): void {
    if (this.dst.destroyed || this.dst.writableFinished) this.finish();
    else if (this.src.readableEnded || this.src.destroyed) this.onEof();
    // A 'data' listener does not resume a stream that was explicitly paused (an entry that
    // paused its socket while it parsed a handshake, for example): resume it here.
    else this.src.resume();
  }
}

/*
 * Listeners are module-level functions shared by every copy, found through a symbol on each
 * stream, instead of closures per copy: an idle tunnel then costs no function objects here.
 */
const kCopy = Symbol('hbone.copy');
type CopyStream = Duplex & { [kCopy]?: BidiCopy };

function copyOf(s: CopyStream): BidiCopy {
  return s[kCopy]!;
}
function readingFrom(s: CopyStream): Direction {
  const c = copyOf(s);
  return s === c.down ? c.upward : c.downward;
}
function writingTo(s: CopyStream): Direction {
  const c = copyOf(s);
  return s === c.down ? c.downward : c.upward;
}
function onData(this: CopyStream, chunk: Buffer): void {
  readingFrom(this).onData(chunk);
}
function onEnd(this: CopyStream): void {
  readingFrom(this).onEof();
}
function onDrain(this: CopyStream): void {
  writingTo(this).onDrain();
}
function onFinish(this: CopyStream): void {
  writingTo(this).finish();
}
function onClose(this: CopyStream): void {
  // Closed: nothing more to read from it (EOF onwards), nothing more can be written to it.
  readingFrom(this).onEof();
  writingTo(this).finish();
}
function onError(this: CopyStream, err: Error): void {
  // A benign error is followed by 'close', which ends both directions on this stream.
  if (!isBenignCloseError(err)) copyOf(this).abort(err);
}

/** A running copy; see the module comment for its guarantees. */
export class BidiCopy {
  /** @internal */ readonly upward: Direction;
  /** @internal */ readonly downward: Direction;
  private result: CopyResult | undefined;
  private error: Error | undefined;
  private promise: Promise<CopyResult> | undefined;
  private resolve: ((r: CopyResult) => void) | undefined;

  constructor(
    readonly down: Duplex,
    readonly up: Duplex,
    private readonly onDone?: (r: CopyResult) => void,
  ) {
    this.upward = new Direction(down, up, this);
    this.downward = new Direction(up, down, this);
    for (const s of [down, up] as CopyStream[]) {
      s[kCopy] = this;
      if (s instanceof net.Socket) {
        // Half-close needs the socket to stay writable after the peer's FIN.
        s.allowHalfOpen = true;
        s.setNoDelay(true);
      }
      s.on('error', onError);
      s.on('close', onClose);
      s.on('data', onData);
      s.on('end', onEnd);
      s.on('drain', onDrain);
      s.on('finish', onFinish);
    }
    this.upward.start();
    this.downward.start();
  }

  /** Resolves once with the byte counts (and the error, if any); never rejects. */
  get done(): Promise<CopyResult> {
    if (this.result) return Promise.resolve(this.result);
    this.promise ??= new Promise((r) => (this.resolve = r));
    return this.promise;
  }

  get settled(): boolean {
    return this.result !== undefined;
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
    if (this.result) return;
    this.error = reason;
    this.settle();
  }

  /** @internal */
  directionDone(): void {
    if (this.upward.done && this.downward.done) this.settle();
  }

  private settle(): void {
    if (this.result) return;
    const result: CopyResult = { bytesUp: this.upward.bytes, bytesDown: this.downward.bytes };
    if (this.error) result.error = this.error;
    this.result = result;
    // Our error listener stays attached, so late errors from either side are swallowed.
    // A stream that ended cleanly both ways closes by itself; it is not destroyed, so that an
    // HTTP/2 stream not yet marked closed cannot send a needless RST_STREAM (nghttp2 servers
    // answer received resets beyond a burst of 1000, then 33/s, with a GOAWAY that kills every
    // tunnel on the connection).
    for (const s of [this.down, this.up]) {
      if (this.error || !(s.readableEnded && s.writableFinished)) s.destroy();
    }
    this.resolve?.(result);
    this.onDone?.(result);
  }
}

/**
 * Start copying between `down` (where the connection came from) and `up` (where it goes).
 * `onDone`, if given, is called once with the result (as `done` resolves).
 */
export function copyBidirectional(down: Duplex, up: Duplex, onDone?: (r: CopyResult) => void): BidiCopy {
  return new BidiCopy(down, up, onDone);
}
