/**
 * Test fixtures around the pool: an outbound entry (a TCP listener that tunnels each accepted
 * socket through the pool, as ztunnel's outbound does), a pausable TCP relay to simulate a dead
 * path, and a listening socket that never accepts (for connect timeouts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { copyBidirectional, type BidiCopy } from '../copy.js';
import type { HbonePool } from '../pool.js';
import type { HboneConnectRequest } from '../pool-request.js';
import { ID_CLIENT, ID_SERVER, certFor } from './mesh.js';

export function connectRequest(port: number, over: Partial<HboneConnectRequest> = {}): HboneConnectRequest {
  return {
    source: { identity: ID_CLIENT, cert: certFor(ID_CLIENT) },
    expectedIdentities: [ID_SERVER],
    dst: { ip: '127.0.0.1', port },
    authority: '127.0.0.1:8080',
    headers: { forwarded: 'for="127.0.0.1:1"' },
    ...over,
  };
}

export interface Outbound {
  port: number;
  copies: BidiCopy[];
  errors: Error[];
  close(): Promise<void>;
}

/** Accept TCP, open an HBONE tunnel through `pool`, copy both ways. */
export async function startOutbound(pool: HbonePool, request: () => HboneConnectRequest): Promise<Outbound> {
  const out: Outbound = { port: 0, copies: [], errors: [], close: async () => {} };
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    pool.connect(request()).then(
      (stream) => {
        out.copies.push(copyBidirectional(socket, stream));
        socket.resume();
      },
      (err: Error) => {
        out.errors.push(err);
        socket.destroy();
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  out.port = (server.address() as net.AddressInfo).port;
  out.close = async () => {
    for (const s of sockets) s.destroy();
    server.close();
    if (server.listening) await once(server, 'close');
  };
  return out;
}

export interface Relay {
  port: number;
  /** Stop forwarding in both directions (the path goes dead, nothing is closed). */
  pause(): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number): Promise<Relay> {
  const pairs: Array<[net.Socket, net.Socket]> = [];
  let paused = false;
  const server = net.createServer((a) => {
    const b = net.connect(targetPort, '127.0.0.1');
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.pipe(b);
    b.pipe(a);
    pairs.push([a, b]);
    if (paused) {
      a.pause();
      b.pause();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    pause: () => {
      paused = true;
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    close: async () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      server.close();
      if (server.listening) await once(server, 'close');
    },
  };
}

export interface Blackhole {
  port: number;
  close(): void;
}

/**
 * A loopback port whose SYNs go unanswered: a child process listens with backlog 1 and is
 * stopped (SIGSTOP), two filler connections fill its accept queue, and the kernel then drops
 * further SYNs, so a connect hangs as it would behind a NetworkPolicy.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>process.stdout.write(String(s.address().port)+'\\n'))",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  child.kill('SIGSTOP');
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const f = net.connect(port, '127.0.0.1');
    f.on('error', () => {});
    fillers.push(f);
    await once(f, 'connect');
  }
  return {
    port,
    close: () => {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    },
  };
}
