/**
 * RequestBody: the downstream request body, streamed to the current upstream attempt and kept
 * for a retry while it fits in the retry buffer (Envoy buffers a request body for retries up to
 * its buffer limit and gives up retrying beyond it).
 *
 * Invariants:
 * - the downstream is read only while an attempt is attached and that attempt's writable is
 *   not backpressured: nothing is pulled from the client faster than the backend takes it;
 * - every attached sink receives the body from its first byte, in order, exactly once: the kept
 *   chunks first, then live ones; `end()` is called on the sink once the downstream has ended;
 * - at most `limit` bytes are kept; once more have been read the kept copy is dropped and
 *   `replayable` stays false, so a retry is possible only if no byte has been read at all;
 * - after release() nothing is kept and no sink is attached.
 */
import type { Readable, Writable } from 'node:stream';

/** Envoy's default per-connection buffer limit (1 MiB), which bounds its retry buffer. */
export const DEFAULT_RETRY_BUFFER_BYTES = 1024 * 1024;

export class RequestBody {
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private readBytes = 0;
  private overflowed = false;
  private ended = false;
  private failed: Error | undefined;
  private sink: Writable | undefined;
  private readonly onDrain = (): void => {
    if (this.sink && !this.ended) this.source.resume();
  };

  constructor(
    private readonly source: Readable,
    private readonly limit: number = DEFAULT_RETRY_BUFFER_BYTES,
  ) {
    source.pause();
    source.on('data', this.onData);
    source.once('end', this.onEnd);
    source.once('error', (err: Error) => {
      this.failed = err;
    });
  }

  /** Bytes read from the downstream so far. */
  get bytes(): number {
    return this.readBytes;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** A new attempt can be given the whole body. */
  get replayable(): boolean {
    return this.readBytes === 0 || !this.overflowed;
  }

  /** The downstream body failed (client reset) before it ended. */
  get error(): Error | undefined {
    return this.failed;
  }

  /** Send the body (from its first byte) to `sink`; detaches the previous sink. */
  attach(sink: Writable): void {
    this.detach();
    if (!this.replayable) throw new Error('request body is no longer replayable');
    this.sink = sink;
    sink.on('drain', this.onDrain);
    let ok = true;
    for (const chunk of this.kept) ok = sink.write(chunk) && ok;
    if (this.ended) {
      sink.end();
      return;
    }
    if (ok) this.source.resume();
  }

  /** Stop feeding the current sink (the attempt ended); the downstream pauses. */
  detach(): void {
    if (!this.sink) return;
    this.sink.off('drain', this.onDrain);
    this.sink = undefined;
    if (!this.ended) this.source.pause();
  }

  /** Drop the kept copy: no more retries will need it. */
  release(): void {
    this.kept = [];
    this.keptBytes = 0;
    this.overflowed = true;
  }

  /** Read and discard the rest of the body (after answering without forwarding it). */
  discard(): void {
    this.detach();
    this.release();
    this.source.off('data', this.onData);
    this.source.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.readBytes += chunk.length;
    if (!this.overflowed) {
      if (this.keptBytes + chunk.length <= this.limit) {
        this.kept.push(chunk);
        this.keptBytes += chunk.length;
      } else {
        this.release();
      }
    }
    const sink = this.sink;
    if (!sink) {
      this.source.pause();
      return;
    }
    if (!sink.write(chunk)) this.source.pause();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.sink?.end();
  };
}
