import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyToSocks5 } from './socks5-server.js';
import { Reply, type Socks5Target } from './socks5.js';
import { socksConnect, Socks5Error } from '../demo/socks5-client.js';

const servers: net.Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

async function socksServer(
  decide: (t: Socks5Target) => 'echo' | number,
): Promise<{ port: number; errors: string[] }> {
  const errors: string[] = [];
  const server = net.createServer((socket) =>
    proxyToSocks5(
      socket,
      (s, target, session) => {
        const d = decide(target);
        if (d === 'echo') {
          session.succeed();
          s.resume();
          s.pipe(s);
        } else session.fail(d as (typeof Reply)[keyof typeof Reply]);
      },
      (m) => errors.push(m),
    ),
  );
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, errors };
}

describe('SOCKS5 server', () => {
  it('hands the target over after the handshake and keeps bytes sent early', async () => {
    const seen: Socks5Target[] = [];
    const { port } = await socksServer((t) => (seen.push(t), 'echo'));
    const s = await socksConnect({ host: '127.0.0.1', port }, 'backend.shop:8080');
    const echoed = new Promise<string>((resolve) => {
      let text = '';
      s.on('data', (c: Buffer) => (text += c.toString()));
      s.on('end', () => resolve(text));
    });
    s.end('ping');
    expect(await echoed).toBe('ping');
    expect(seen).toEqual([{ kind: 'domain', hostname: 'backend.shop', port: 8080 }]);
  });

  it('answers failures with the RFC 1928 code', async () => {
    const { port } = await socksServer(() => Reply.NotAllowed);
    const err = await socksConnect({ host: '127.0.0.1', port }, '127.0.0.9:80').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Socks5Error);
    expect((err as Socks5Error).reply).toBe(Reply.NotAllowed);
    expect((err as Error).message).toBe('SOCKS5 CONNECT failed: connection not allowed by ruleset');
  });

  it('refuses clients that only offer username/password, and non-SOCKS bytes', async () => {
    const { port, errors } = await socksServer(() => 'echo');
    const reply = await new Promise<Buffer>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.write(Buffer.from([5, 1, 2])));
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(reply).toEqual(Buffer.from([5, 0xff]));
    await new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\n\r\n'));
      c.on('close', () => resolve());
      c.resume();
    });
    expect(errors).toEqual([
      'client does not offer the no-authentication method',
      'not SOCKS5 (version byte 71)',
    ]);
  });
});
