/**
 * Protocol detection on the first bytes of an inbound tunnel: the HTTP/2 connection preface
 * (prior knowledge, gRPC), an HTTP/1.x request line, or anything else (plain TCP). The decision
 * is a pure function of the bytes seen so far (`buildProtocolGuess`), so it is tested as a
 * table; `sniffProtocol` reads just enough bytes from a stream and puts them back.
 *
 * Like Istio, there is no detection timeout: a server-first protocol (the server speaks first)
 * on a port that is not declared TCP waits for the client's first bytes. Declare such ports with
 * `appProtocol: tcp` (or a `tcp-` port name) so the waypoint passes them through without
 * sniffing.
 */
import type { Duplex } from 'node:stream';

export type SniffedProtocol = 'http1' | 'http2' | 'tcp';

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/**
 * A request line longer than this is still treated as HTTP/1 if it is well-formed so far: the
 * HTTP parser then answers 414/431. 8 KiB is Envoy's and Node's request-line budget order.
 */
export const MAX_SNIFF_BYTES = 8192;
/** The longest method token accepted (longer than any registered method). */
const MAX_METHOD = 20;

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;

function isMethodChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f; // A-Z - _
}

/** 'yes', 'no', or 'more' (the bytes so far are a prefix of a valid request line). */
function classifyHttp1(b: Buffer): 'yes' | 'no' | 'more' {
  let i = 0;
  while (i < b.length && i <= MAX_METHOD && isMethodChar(b[i] ?? 0)) i++;
  if (i === b.length) return i <= MAX_METHOD ? 'more' : 'no';
  if (i === 0 || i > MAX_METHOD || b[i] !== SP) return 'no';
  i++;
  const targetStart = i;
  while (i < b.length && (b[i] ?? 0) > SP && b[i] !== 0x7f) i++;
  if (i === b.length) return 'more';
  if (i === targetStart || b[i] !== SP) return 'no';
  i++;
  for (const c of Buffer.from('HTTP/1.', 'latin1')) {
    if (i === b.length) return 'more';
    if (b[i] !== c) return 'no';
    i++;
  }
  if (i === b.length) return 'more';
  if (b[i] !== 0x30 && b[i] !== 0x31) return 'no';
  i++;
  if (i === b.length) return 'more';
  if (b[i] !== CR) return 'no';
  i++;
  if (i === b.length) return 'more';
  return b[i] === LF ? 'yes' : 'no';
}

/** The protocol the bytes announce, or 'need-more' while they are still ambiguous. */
export function buildProtocolGuess(head: Buffer, ended = false): SniffedProtocol | 'need-more' {
  if (head.length === 0) return ended ? 'tcp' : 'need-more';
  const n = Math.min(head.length, HTTP2_PREFACE.length);
  if (head.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n))) {
    if (head.length >= HTTP2_PREFACE.length) return 'http2';
    if (!ended) return 'need-more';
  }
  const h1 = classifyHttp1(head);
  if (h1 === 'yes') return 'http1';
  if (h1 === 'no' || ended) return 'tcp';
  return head.length >= MAX_SNIFF_BYTES ? 'http1' : 'need-more';
}

export interface SniffResult {
  protocol: SniffedProtocol;
  /** Bytes read so far (already put back into the stream). */
  bytes: number;
  /** The stream ended or failed before it sent anything: there is nothing to serve. */
  empty: boolean;
}

/**
 * Reads from `stream` until the protocol is known, then unshifts what it read, so the next
 * consumer sees the stream from its first byte. Resolves 'tcp' with `empty` when the stream
 * ends (or errors) before sending a byte.
 */
export function sniffProtocol(stream: Duplex): Promise<SniffResult> {
  return new Promise((resolve) => {
    let head: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (protocol: SniffedProtocol, ended: boolean): void => {
      if (settled) return;
      settled = true;
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      stream.off('close', onEnd);
      if (head.length > 0 && !stream.destroyed) stream.unshift(head);
      resolve({ protocol, bytes: head.length, empty: ended && head.length === 0 });
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (!settled && (chunk = stream.read() as Buffer | null) !== null) {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const guess = buildProtocolGuess(head);
        if (guess !== 'need-more') finish(guess, false);
      }
    };
    const onEnd = (): void => {
      const guess = buildProtocolGuess(head, true);
      finish(guess === 'need-more' ? 'tcp' : guess, true);
    };
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', onEnd);
    stream.once('close', onEnd);
  });
}
