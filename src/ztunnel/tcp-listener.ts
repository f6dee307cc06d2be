/**
 * TcpListener: a plain TCP listener of a workload proxy (SOCKS5 15080, captured outbound 15001,
 * captured plaintext inbound 15006) that keeps every accepted connection until it closes.
 *
 * Invariants: an accepted socket is tracked from accept to 'close', so drain can wait for the
 * last one and close() can end them all; nothing is accepted after stopAccepting().
 */
import net from 'node:net';
import type { ListenTarget } from './socket-factory.js';

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    onConnection: (socket: net.Socket) => void,
    options: net.ServerOpts = {},
  ) {
    // Half-open: a client's FIN must not close our write side; the copy forwards it as
    // END_STREAM and keeps the response flowing.
    this.server = net.createServer({ allowHalfOpen: true, ...options }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (this.sockets.size === 0) this.idleWaiters.splice(0).forEach((w) => w());
      });
      socket.on('error', () => socket.destroy());
      onConnection(socket);
    });
  }

  listen(target: ListenTarget): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(target, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo | null)?.port ?? 0;
  }

  get size(): number {
    return this.sockets.size;
  }

  stopAccepting(): void {
    if (this.server.listening) this.server.close();
  }

  /** Resolves when no accepted connection is left. */
  whenIdle(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop accepting and end every connection now. */
  close(): void {
    this.stopAccepting();
    for (const s of this.sockets) s.destroy();
  }
}
