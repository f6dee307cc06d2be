import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MESH_PACKET_MARK, getOriginalDst, listenSocket, openSocket } from '../../src/capture/index.js';
import { capture, captureNote } from '../helpers/privileges.js';
import { createNetns, type TestNetns } from '../helpers/netns.js';

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

describe.skipIf(!capture.ok)(`native capture addon in a network namespace${captureNote}`, () => {
  let ns: TestNetns | undefined;
  const closers: Array<() => void> = [];
  afterEach(() => {
    closers.splice(0).forEach((c) => c());
    ns?.remove();
  });

  it('reads SO_ORIGINAL_DST after REDIRECT, and a marked socket bypasses the rule', async () => {
    const netns = createNetns();
    ns = netns;
    // Redirect unmarked TCP to 127.0.9.9:80 to the capture listener, as istio-cni does for 15001/15006.
    netns.exec('iptables', [
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '-d',
      '127.0.9.9',
      '--dport',
      '80',
      '-m',
      'mark',
      '!',
      '--mark',
      `${MESH_PACKET_MARK}/0xfff`,
      '-j',
      'REDIRECT',
      '--to-ports',
      '15006',
    ]);

    const server = net.createServer();
    closers.push(() => server.close());
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) =>
      server.listen({ fd: listenSocket(netns.path, '127.0.0.1', 15006) }, resolve),
    );

    const client = new net.Socket({ fd: openSocket(netns.path, 4, 0) });
    closers.push(() => client.destroy());
    client.connect(80, '127.0.9.9');
    const conn = await accepted;
    closers.push(() => conn.destroy());
    expect(getOriginalDst(fdOf(conn))).toEqual({ address: '127.0.9.9', port: 80, family: 'IPv4' });

    const marked = new net.Socket({ fd: openSocket(netns.path, 4, MESH_PACKET_MARK) });
    closers.push(() => marked.destroy());
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      marked.once('error', resolve);
      marked.connect(80, '127.0.9.9');
    });
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('names the errno when a namespace does not exist', () => {
    expect(() => openSocket('/var/run/netns/meshd-does-not-exist', 4, 0)).toThrow(
      /open\(netns\): No such file or directory/,
    );
  });
});
