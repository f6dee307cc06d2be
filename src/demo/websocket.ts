/**
 * A minimal RFC 6455 (WebSocket) codec for the sample apps and the tests: the handshake's accept
 * key, and frames without extensions. Enough for an echo server and a client that checks what
 * travelled through the mesh; not a general WebSocket library.
 *
 * Invariants: a client masks every frame it sends and a server never does (RFC 6455 5.1); the
 * reader returns whole frames only, and keeps a partial one until the rest arrives.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const OPCODE = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
export function buildAcceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** A fresh Sec-WebSocket-Key. */
export function buildClientKey(): string {
  return randomBytes(16).toString('base64');
}

/** One final frame; `mask` is true for a client's frames. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lenBytes + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (lenBytes === 0 ? n : lenBytes === 2 ? 126 : 127);
  if (lenBytes === 2) head.writeUInt16BE(n, 2);
  if (lenBytes === 8) head.writeBigUInt64BE(BigInt(n), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + lenBytes);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] ?? 0) ^ (key[i & 3] ?? 0);
  return Buffer.concat([head, body]);
}

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  /** Add bytes; returns the frames now complete (unmasked). */
  feed(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const f = this.next();
      if (!f) return frames;
      frames.push(f);
    }
  }

  private next(): Frame | undefined {
    const b = this.buf;
    if (b.length < 2) return undefined;
    const masked = ((b[1] ?? 0) & 0x80) !== 0;
    let len = (b[1] ?? 0) & 0x7f;
    let at = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('WebSocket frame too large');
      len = Number(big);
      at = 10;
    }
    const keyAt = at;
    if (masked) at += 4;
    if (b.length < at + len) return undefined;
    const payload = Buffer.from(b.subarray(at, at + len));
    if (masked) for (let i = 0; i < len; i++) payload[i] = (payload[i] ?? 0) ^ (b[keyAt + (i & 3)] ?? 0);
    this.buf = b.subarray(at + len);
    return { fin: ((b[0] ?? 0) & 0x80) !== 0, opcode: (b[0] ?? 0) & 0x0f, payload };
  }
}

/** An HTTP/1.1 response head (without its final CRLF CRLF): status and lower-case headers. */
export function parseResponseHead(head: Buffer): { status: number; headers: Record<string, string> } {
  const [statusLine = '', ...lines] = head.toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers };
}

export interface WebSocketExchange {
  /** Status of the handshake's answer (101 when upgraded). */
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  /** Whether Sec-WebSocket-Accept matched our key. */
  acceptOk: boolean;
  /** The first message the server sent back, when upgraded. */
  reply?: string;
}

/**
 * On an open connection (for example through SOCKS5): the WebSocket handshake for `path`, one
 * text message, the first message back, and a close. Rejects after `timeoutMs`.
 */
export function exchangeWebSocketMessage(
  socket: Duplex,
  host: string,
  path: string,
  message: string,
  extraHeaders: Record<string, string> = {},
  timeoutMs = 5_000,
): Promise<WebSocketExchange> {
  const key = buildClientKey();
  const headers = {
    host,
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': key,
    ...extraHeaders,
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no WebSocket answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (r: WebSocketExchange): void => {
      clearTimeout(timer);
      socket.end(r.status === 101 ? encodeFrame(OPCODE.close, Buffer.alloc(0), true) : undefined);
      resolve(r);
    };
    let buf = Buffer.alloc(0);
    let head: Omit<WebSocketExchange, 'reply'> | undefined;
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      let rest = chunk;
      if (!head) {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const parsed = parseResponseHead(buf.subarray(0, end));
        head = { ...parsed, acceptOk: parsed.headers['sec-websocket-accept'] === buildAcceptKey(key) };
        if (head.status !== 101) return done(head);
        socket.write(encodeFrame(OPCODE.text, Buffer.from(message), true));
        rest = buf.subarray(end + 4);
      }
      const text = reader.feed(rest).find((f) => f.opcode === OPCODE.text);
      if (text) done({ ...head, reply: text.payload.toString() });
    });
    socket.on('error', (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\n${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n')}\r\n\r\n`,
    );
  });
}
