/**
 * End-to-end tunnels: app client → outbound entry (copy) → pool → HBONE server → (copy) → app.
 * Half-close in both directions, integrity of 100 MB each way at once, and bounded buffering
 * under a slow reader.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { HbonePool } from './pool.js';
import type { TunnelHandle } from './types.js';
import {
  consume,
  patternChunks,
  readAll,
  sha256Of,
  startApp,
  startHbone,
  testHttp2,
  withinMs,
} from './test-helpers/mesh.js';
import { connectRequest, startOutbound } from './test-helpers/tunnel.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MiB = 1024 * 1024;

/** A full path to an app whose per-connection behaviour is `onApp`. */
async function path(onApp: (s: net.Socket) => void) {
  const app = await startApp(onApp);
  cleanups.push(() => app.close());
  const tunnels: TunnelHandle[] = [];
  const { server, port } = await startHbone({
    policy: () => ({
      ok: true,
      target: { host: '127.0.0.1', port: app.port },
      observer: { established: (t) => tunnels.push(t) },
    }),
  });
  cleanups.push(() => server.close());
  const pool = new HbonePool({ http2: testHttp2() });
  cleanups.push(() => pool.destroy());
  const outbound = await startOutbound(pool, () => connectRequest(port));
  cleanups.push(() => outbound.close());
  const client = (): net.Socket => {
    const s = net.connect({ port: outbound.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => s.destroy());
    return s;
  };
  return { client, outbound, tunnels, server };
}

describe('half-close', () => {
  it('client FIN reaches the app, which only then answers; the client gets all of it', async () => {
    const { client } = await path((s) => {
      // The app reads to EOF first, then writes its whole answer and closes.
      void readAll(s).then((req) => {
        s.write(`got ${req.length} bytes: `);
        s.end(req.toString().toUpperCase());
      });
    });
    const c = client();
    await once(c, 'connect');
    c.end('hello over hbone');
    const res = await withinMs(5_000, 'response after half-close', readAll(c));
    expect(res.toString()).toBe('got 16 bytes: HELLO OVER HBONE');
  });

  it('app FIN reaches the client, which can still send afterwards', async () => {
    const appGot: Promise<Buffer>[] = [];
    const { client } = await path((s) => {
      s.end('server first, then done'); // half-close towards the client
      appGot.push(readAll(s));
    });
    const c = client();
    const fromApp = await withinMs(5_000, 'app data + FIN at the client', readAll(c));
    expect(fromApp.toString()).toBe('server first, then done');
    // Our write side is still open: the app receives what we send after its FIN.
    c.end('late client data');
    expect((await withinMs(5_000, 'late data at the app', appGot[0]!)).toString()).toBe('late client data');
  });
});

describe('integrity', () => {
  it('carries 100 MB each way at once through one tunnel, SHA-256 checked on both ends', async () => {
    const size = 100 * MiB;
    const appHash = createHash('sha256');
    let appDone!: Promise<void>;
    const { client, outbound } = await path((s) => {
      appDone = Promise.all([
        pipeline(Readable.from(patternChunks(size, 2)), s),
        consume(s, (c) => appHash.update(c)),
      ]).then(() => undefined);
    });
    const c = client();
    const clientHash = createHash('sha256');
    const reading = consume(c, (chunk) => clientHash.update(chunk));
    await pipeline(Readable.from(patternChunks(size, 1)), c);
    await withinMs(120_000, 'both directions complete', Promise.all([reading, appDone]));
    expect(appHash.digest('hex')).toBe(sha256Of(size, 1));
    expect(clientHash.digest('hex')).toBe(sha256Of(size, 2));
    const result = await outbound.copies[0]!.done;
    expect(result).toEqual({ bytesUp: size, bytesDown: size });
  });
});

describe('backpressure', () => {
  it('keeps buffering bounded while a slow app reads 200 MB', async () => {
    const size = 200 * MiB;
    let received = 0;
    const { client, outbound, tunnels } = await path((s) => {
      // A slow reader: at most 1 MiB per 10 ms tick (about 100 MB/s at best).
      let sinceTick = 0;
      s.on('data', (c: Buffer) => {
        received += c.length;
        sinceTick += c.length;
        if (sinceTick >= MiB) {
          sinceTick = 0;
          s.pause();
          setTimeout(() => s.resume(), 10);
        }
      });
      s.on('end', () => s.end());
    });
    const rss0 = process.memoryUsage.rss();
    let maxBuffered = 0;
    let maxRss = rss0;
    const sampler = setInterval(() => {
      const inside =
        (tunnels[0]?.bufferedBytes() ?? 0) + outbound.copies.reduce((n, c) => n + c.bufferedBytes(), 0);
      maxBuffered = Math.max(maxBuffered, inside);
      maxRss = Math.max(maxRss, process.memoryUsage.rss());
    }, 5);
    cleanups.push(() => clearInterval(sampler));
    const c = client();
    const done = readAll(c);
    await pipeline(Readable.from(patternChunks(size, 3, MiB)), c);
    await withinMs(120_000, 'transfer end', done);
    clearInterval(sampler);
    expect(received).toBe(size);
    // One stream window (4 MiB) plus high-water marks and a chunk or two per side.
    expect(maxBuffered).toBeLessThan(8 * MiB);
    expect(maxBuffered).toBeGreaterThan(MiB); // the reader really was slower than the writer
    // Nothing else buffered the transfer either: the process grew far less than 200 MB.
    expect(maxRss - rss0).toBeLessThan(100 * MiB);
  });
});
