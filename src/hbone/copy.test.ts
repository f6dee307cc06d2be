/**
 * copyBidirectional on plain TCP legs (app ⇄ [down | copy | up] ⇄ app), and the reset semantics
 * on an HTTP/2 leg through the HBONE server.
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { copyBidirectional, isBenignCloseError, type BidiCopy } from './copy.js';
import type { TunnelRecord } from './types.js';
import { rawHboneClient, rawRequest, readAll, startApp, startHbone, withinMs } from './test-helpers/mesh.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Two connected TCP sockets. */
async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const a = net.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  const [b] = await accepted;
  await once(a, 'connect');
  server.close();
  for (const s of [a, b]) {
    s.on('error', () => {});
    cleanups.push(() => s.destroy());
  }
  return [a, b];
}

/** Resolve when the peer ended its side in any way: FIN, reset or close. */
function ended(s: net.Socket): Promise<void> {
  return new Promise((r) => {
    for (const ev of ['end', 'error', 'close']) s.once(ev, () => r());
    s.resume();
  });
}

/** client ⇄ down ═copy═ up ⇄ app */
async function copied(): Promise<{ client: net.Socket; app: net.Socket; down: net.Socket; copy: BidiCopy }> {
  const [client, down] = await tcpPair();
  const [up, app] = await tcpPair();
  return { client, app, down, copy: copyBidirectional(down, up) };
}

describe('isBenignCloseError', () => {
  const err = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });
  it.each([
    [err('ECONNRESET'), true],
    [err('EPIPE'), true],
    [err('ERR_STREAM_PREMATURE_CLOSE'), true],
    [err('ERR_HTTP2_STREAM_ERROR', 'Stream closed with error code NGHTTP2_STREAM_CLOSED'), true],
    [err('ERR_HTTP2_STREAM_ERROR', 'Stream closed with error code NGHTTP2_PROTOCOL_ERROR'), false],
    [err('ERR_HTTP2_SESSION_ERROR'), false],
    [err('ETIMEDOUT'), false],
    [new Error('plain'), false],
    ['not an error', false],
  ])('%s → %s', (e, want) => expect(isBenignCloseError(e)).toBe(want));
});

describe('copyBidirectional on TCP', () => {
  it('copies both ways and half-closes each direction on its own', async () => {
    const { client, app, copy } = await copied();
    client.end('request');
    expect((await readAll(app)).toString()).toBe('request'); // FIN arrived
    app.write('response after FIN');
    app.end();
    expect((await readAll(client)).toString()).toBe('response after FIN');
    expect(await copy.done).toEqual({ bytesUp: 7, bytesDown: 18 });
  });

  it('treats a reset as a normal close and sends FIN (not RST) the other way', async () => {
    const { client, app, copy } = await copied();
    client.write('abc');
    await once(app, 'data');
    const appEnd = readAll(app).then(
      () => 'fin',
      (e: NodeJS.ErrnoException) => e.code ?? 'error',
    );
    client.resetAndDestroy();
    expect(await withinMs(2_000, 'app sees the end', appEnd)).toBe('fin');
    const r = await copy.done;
    expect(r.error).toBeUndefined();
    expect(r.bytesUp).toBe(3);
  });

  it('tears both sides down on a real error and reports it', async () => {
    const { client, app, down, copy } = await copied();
    client.write('abc');
    await once(app, 'data');
    const appEnded = ended(app);
    const clientEnded = ended(client);
    // An error that is not a reset or broken pipe, raised on the downstream leg.
    down.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    const r = await copy.done;
    expect(r.error?.message).toBe('disk on fire');
    await withinMs(2_000, 'both outer sides ended', Promise.all([appEnded, clientEnded]));
  });

  it('abort() ends both sides with the given reason', async () => {
    const { client, app, copy } = await copied();
    const both = Promise.all([ended(client), ended(app)]);
    copy.abort(new Error('policy changed'));
    expect((await copy.done).error?.message).toBe('policy changed');
    await withinMs(2_000, 'both outer sides ended', both);
  });
});

describe('resets on the HTTP/2 leg', () => {
  async function tunnel() {
    const appSockets: net.Socket[] = [];
    const app = await startApp((s) => appSockets.push(s));
    cleanups.push(() => app.close());
    const records: TunnelRecord[] = [];
    let recorded!: (r: TunnelRecord) => void;
    const record = new Promise<TunnelRecord>((r) => (recorded = r));
    const { server, port } = await startHbone({
      policy: () => ({
        ok: true,
        target: { host: '127.0.0.1', port: app.port },
        observer: {
          closed: (r) => {
            records.push(r);
            recorded(r);
          },
        },
      }),
    });
    cleanups.push(() => server.close());
    const s = rawHboneClient(port);
    cleanups.push(() => s.destroy());
    const res = await rawRequest(s, { ':method': 'CONNECT', ':authority': `127.0.0.1:${app.port}` });
    expect(res.status).toBe(200);
    res.stream.write('hello');
    while (appSockets.length === 0) await once(app.server, 'connection');
    const appSocket = appSockets[0]!;
    await once(appSocket, 'data');
    return { stream: res.stream, appSocket, record };
  }

  it.each([
    ['CANCEL', http2.constants.NGHTTP2_CANCEL],
    ['NO_ERROR', http2.constants.NGHTTP2_NO_ERROR],
  ])('RST_STREAM(%s) from the client is EOF: the app gets FIN, no error', async (_n, code) => {
    const { stream, appSocket, record } = await tunnel();
    const appEnd = readAll(appSocket).then(
      () => 'fin',
      (e: NodeJS.ErrnoException) => e.code ?? 'error',
    );
    stream.close(code);
    expect(await withinMs(2_000, 'app end', appEnd)).toBe('fin');
    const r = await withinMs(2_000, 'record', record);
    expect(r.error).toBeUndefined();
    expect(r.bytesUp).toBe(5);
  });

  it('RST_STREAM(INTERNAL_ERROR) is reported as an error', async () => {
    const { stream, record } = await tunnel();
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    const r = await withinMs(2_000, 'record', record);
    expect(r.error).toMatch(/NGHTTP2_INTERNAL_ERROR/);
  });
});
