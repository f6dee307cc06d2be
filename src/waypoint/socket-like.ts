/**
 * asSocketLike: lets node:http (server or client) run over a stream that is not a net.Socket,
 * such as an HBONE CONNECT stream (Http2Stream) or an in-process pair.
 */
import type { Duplex } from 'node:stream';

export type SocketLike = Duplex & {
  setKeepAlive?: (enable?: boolean, delay?: number) => unknown;
  setNoDelay?: (noDelay?: boolean) => unknown;
  setTimeout?: (ms: number, cb?: () => void) => unknown;
  ref?: () => unknown;
  unref?: () => unknown;
};

type WritevChunk = { chunk: Buffer | string; encoding: BufferEncoding | 'buffer' };
type Writev = (chunks: WritevChunk[], cb: (err?: Error | null) => void) => void;

/**
 * node:http calls a few net.Socket methods on its connections; give a plain Duplex no-op ones.
 *
 * It also works around a Node 20 bug: an Http2Stream (our HBONE tunnel) that receives, in one
 * writev, a latin1 string followed by an empty Buffer frees the string's storage before sending
 * it, so the peer gets 16 bytes of freed memory instead of the start of the string. ClientRequest
 * does exactly that when it flushes its header with the first body write. Writev then gets
 * Buffers only, and no empty ones (reproduced with plain node:http2; see upstream-http1.test.ts).
 */
function encodingOf(e: BufferEncoding | 'buffer'): BufferEncoding {
  return e === 'buffer' ? 'latin1' : e;
}

export function asSocketLike(stream: Duplex): Duplex {
  const s = stream as SocketLike & { _writev?: Writev };
  const self = (): SocketLike => s;
  s.setKeepAlive ??= self;
  s.setNoDelay ??= self;
  s.setTimeout ??= self;
  s.ref ??= self;
  s.unref ??= self;
  const writev = s._writev?.bind(s);
  if (writev) {
    s._writev = (chunks: WritevChunk[], cb: (err?: Error | null) => void): void => {
      const bufs: WritevChunk[] = [];
      for (const c of chunks) {
        const b: Buffer =
          typeof c.chunk === 'string' ? Buffer.from(c.chunk, encodingOf(c.encoding)) : c.chunk;
        if (b.length > 0) bufs.push({ chunk: b, encoding: 'buffer' });
      }
      if (bufs.length === 0) cb();
      else writev(bufs, cb);
    };
  }
  return s;
}
