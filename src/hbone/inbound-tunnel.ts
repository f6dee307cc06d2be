/**
 * InboundTunnel: one established inbound tunnel (after the 200). It owns the copy between the
 * CONNECT stream and the app socket, is the TunnelHandle given to the policy's observer, and
 * reports once through `onEnd` when the copy ends.
 */
import type http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { copyBidirectional, type BidiCopy, type CopyResult } from './copy.js';
import type { DialTarget, InboundRequest, TunnelHandle, TunnelObserver, TunnelRecord } from './types.js';

/** An established tunnel: the handle given to the observer, and what its record is built from. */
export class InboundTunnel implements TunnelHandle {
  readonly startedAtMs: number;
  private readonly copy: BidiCopy;

  constructor(
    readonly connectionId: string,
    readonly request: InboundRequest,
    readonly target: DialTarget,
    readonly observer: TunnelObserver | undefined,
    startedAtMs: number,
    stream: http2.ServerHttp2Stream,
    socket: Duplex,
    onEnd: (t: InboundTunnel, r: CopyResult) => void,
  ) {
    this.startedAtMs = startedAtMs;
    this.copy = copyBidirectional(stream, socket, (r) => onEnd(this, r));
  }

  get bytesUp(): number {
    return this.copy.bytesUp;
  }

  get bytesDown(): number {
    return this.copy.bytesDown;
  }

  bufferedBytes(): number {
    return this.copy.bufferedBytes();
  }

  close(reason: string): void {
    this.copy.abort(new Error(reason));
  }
}

export function buildRecord(
  t: Pick<InboundTunnel, 'connectionId' | 'request' | 'target' | 'startedAtMs'>,
  status: 200 | 503,
  bytesUp: number,
  bytesDown: number,
  error: string | undefined,
): TunnelRecord {
  const record: TunnelRecord = {
    connectionId: t.connectionId,
    request: t.request,
    target: t.target,
    status,
    bytesUp,
    bytesDown,
    durationMs: Date.now() - t.startedAtMs,
  };
  if (error !== undefined) record.error = error;
  return record;
}
