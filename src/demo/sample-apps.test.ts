import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startEchoApp, startTcpEcho, type RunningApp } from './sample-apps.js';

const apps: RunningApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function get(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      })
      .on('error', reject);
  });
}

describe('sample apps', () => {
  it('echo answers HTTP/1.1 with pod, version and scripted statuses', async () => {
    const app = await startEchoApp({ host: '127.0.0.1', port: 0, pod: 'backend-v2-0', version: 'v2' });
    apps.push(app);
    const r = await get(app.address.port, '/hello?x=1');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ pod: 'backend-v2-0', version: 'v2', method: 'GET', path: '/hello?x=1' });
    expect((await get(app.address.port, '/status/418')).status).toBe(418);
    expect((await get(app.address.port, '/flaky/2/k')).status).toBe(503);
    expect((await get(app.address.port, '/flaky/2/k')).status).toBe(503);
    expect((await get(app.address.port, '/flaky/2/k')).status).toBe(200);
    expect((await get(app.address.port, '/_stats')).body).toEqual({ requests: 6 });
    expect(app.count()).toBe(6);
  });

  it('echo answers HTTP/2 with prior knowledge on the same port', async () => {
    const app = await startEchoApp({ host: '127.0.0.1', port: 0, pod: 'p', version: 'v1' });
    apps.push(app);
    const session = http2.connect(`http://127.0.0.1:${app.address.port}`);
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':path': '/grpc.Echo/Say', ':method': 'POST' });
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => resolve(text));
      req.on('error', reject);
      req.end('payload');
    });
    session.close();
    expect(JSON.parse(body)).toMatchObject({
      pod: 'p',
      method: 'POST',
      path: '/grpc.Echo/Say',
      bodyBytes: 7,
    });
  });

  it('tcp echo returns every byte and honours half-close', async () => {
    const app = await startTcpEcho({ host: '127.0.0.1', port: 0 });
    apps.push(app);
    const got = await new Promise<string>((resolve, reject) => {
      const s = net.connect(app.address.port, '127.0.0.1', () => s.end('hello world'));
      let text = '';
      s.on('data', (c: Buffer) => (text += c.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    expect(got).toBe('hello world');
    expect(app.count()).toBe(1);
  });
});
