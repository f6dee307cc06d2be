import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import type { Workload } from '../state/index.js';
import { testWorkload } from '../state/test-helpers/builders.js';
import { NetnsSocketFactory, type CaptureNative } from './socket-factory-netns.js';
import type { ListenScope } from './socket-factory.js';

const wl = (name: string, ip: string): Workload =>
  testWorkload(name, 'shop', ip, { serviceAccount: name, node: 'node1' });

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

/** A fake addon that records listen calls and can fail them. */
function fakeNative(fail?: Error) {
  const listens: Array<{
    netns: string | null;
    host: string;
    port: number;
    mark?: number;
    reusePort?: boolean;
  }> = [];
  const native: CaptureNative = {
    listenSocket: (netns, host, port, opts = {}) => {
      if (fail) throw fail;
      listens.push({ netns, host, port, mark: opts.mark, reusePort: opts.reusePort });
      return 100 + listens.length;
    },
    openSocket: () => {
      throw new Error('not used');
    },
    getOriginalDst: (fd) => {
      if (fd === 7) return { address: '10.77.2.2', port: 8080, family: 'IPv4' };
      throw errno('ENOENT', 'getsockopt(SO_ORIGINAL_DST): No such file or directory');
    },
  };
  return { native, listens };
}

const NETNS: Record<string, string> = { client: '/var/run/netns/client', v6: '/var/run/netns/v6' };
const factory = (native: CaptureNative) =>
  new NetnsSocketFactory({
    findNetns: (w) => NETNS[w.name],
    missingNetnsHint: 'annotate the Pod with meshd.io/netns',
    native,
  });

describe('NetnsSocketFactory', () => {
  const cases: Array<[string, Workload, ListenScope, string]> = [
    ['IPv4 pod, its own listeners', wl('client', '10.77.1.2'), 'workload', '0.0.0.0'],
    ['IPv4 pod, SOCKS5 (loopback only)', wl('client', '10.77.1.2'), 'localhost', '127.0.0.1'],
    ['IPv6 pod, its own listeners', wl('v6', 'fd00::2'), 'workload', '::'],
    ['IPv6 pod, SOCKS5', wl('v6', 'fd00::2'), 'localhost', '::1'],
  ];
  it.each(cases)('%s: listens inside the pod netns, marked 0x539, SO_REUSEPORT', (_n, w, scope, host) => {
    const { native, listens } = fakeNative();
    const target = factory(native).forWorkload(w).listen(15008, scope);
    expect(target).toEqual({ fd: 101 });
    expect(listens).toEqual([{ netns: NETNS[w.name], host, port: 15008, mark: 0x539, reusePort: true }]);
  });

  it('captures, and places a workload by its network namespace', () => {
    const f = factory(fakeNative().native);
    expect(f.captures).toBe(true);
    expect(f.placementOf(wl('client', '10.77.1.2'))).toBe('/var/run/netns/client');
    expect(f.placementOf(wl('stranger', '10.77.1.9'))).toBe('');
  });

  it('a workload without a declared namespace cannot be placed, and the error says how to declare it', () => {
    let err: unknown;
    try {
      factory(fakeNative().native).forWorkload(wl('stranger', '10.77.1.9'));
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'MESH_ERR_CAPTURE')).toBe(true);
    expect((err as Error).message).toMatch(/no network namespace is declared for pod shop\/stranger/);
    expect((err as { hint?: string }).hint).toMatch(/meshd\.io\/netns/);
  });

  const bindFailures: Array<[string, Error, RegExp]> = [
    ['a missing namespace', errno('ENOENT', 'open(netns): No such file or directory'), /does not exist/],
    [
      'a taken port',
      errno('EADDRINUSE', 'bind: Address already in use'),
      /something else listens on port 15006/,
    ],
    ['no privileges', errno('EPERM', 'setns(netns): Operation not permitted'), /needs root/],
  ];
  it.each(bindFailures)('a bind failure from %s is MESH_ERR_BIND with a fix', (_n, cause, hint) => {
    let err: unknown;
    try {
      factory(fakeNative(cause).native).forWorkload(wl('client', '10.77.1.2')).listen(15006, 'workload');
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'MESH_ERR_BIND')).toBe(true);
    expect((err as Error).message).toMatch(
      /cannot listen on 0\.0\.0\.0:15006 in network namespace \/var\/run\/netns\/client of pod shop\/client/,
    );
    expect((err as { hint?: string }).hint).toMatch(hint);
  });

  it('reads the original destination as a value, failures included', () => {
    const f = factory(fakeNative().native);
    const sock = (fd: number) => ({ _handle: { fd } }) as unknown as net.Socket;
    expect(f.originalDestination(sock(7))).toEqual({ ok: true, ip: '10.77.2.2', port: 8080 });
    expect(f.originalDestination(sock(8))).toEqual({
      ok: false,
      reason: 'reading the original destination: getsockopt(SO_ORIGINAL_DST): No such file or directory',
    });
    expect(f.originalDestination({} as net.Socket)).toMatchObject({ ok: false });
  });
});
