/**
 * Readiness (:15021 /healthz/ready): 200 "ready" once no startup task is pending, else 500
 * naming the pending tasks, as ztunnel does. Tasks are registered at startup ("config",
 * "certificates", "proxy") and marked done as each completes.
 */
import type http from 'node:http';
import { createHttpServer, reply } from './http-server.js';

export class Readiness {
  private readonly pending = new Set<string>();

  register(task: string): () => void {
    this.pending.add(task);
    return () => this.done(task);
  }

  done(task: string): void {
    this.pending.delete(task);
  }

  /** Mark a task pending again (e.g. certificates became unavailable). */
  unready(task: string): void {
    this.pending.add(task);
  }

  get ready(): boolean {
    return this.pending.size === 0;
  }

  pendingTasks(): string[] {
    return [...this.pending].sort();
  }
}

export function createReadinessServer(readiness: Readiness): http.Server {
  return createHttpServer((req, res, url) => {
    if (url.pathname !== '/healthz/ready') return reply(res, 404, 'not found; try /healthz/ready\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'use GET\n');
    if (readiness.ready) return reply(res, 200, 'ready\n');
    reply(res, 500, `not ready, pending: ${readiness.pendingTasks().join(', ')}\n`);
  });
}
