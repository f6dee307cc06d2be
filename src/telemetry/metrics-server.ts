/**
 * Prometheus scrape endpoint (:15020): /metrics and /stats/prometheus, the paths Istio's
 * annotations and dashboards use, in the Prometheus text format; gzip when accepted.
 */
import type http from 'node:http';
import { gzipSync } from 'node:zlib';
import type { Registry } from 'prom-client';
import { createHttpServer, reply } from './http-server.js';

export function createMetricsServer(registry: Registry): http.Server {
  return createHttpServer(async (req, res, url) => {
    if (url.pathname !== '/metrics' && url.pathname !== '/stats/prometheus') {
      return reply(res, 404, 'not found; try /metrics or /stats/prometheus\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'use GET\n');
    // Prometheus text exposition: prom-client fixes a registry's format at construction, and
    // every Prometheus-compatible scraper accepts text.
    const body = await registry.metrics();
    const type = registry.contentType;
    if ((req.headers['accept-encoding'] ?? '').includes('gzip')) {
      const gz = gzipSync(body);
      res.writeHead(200, { 'content-type': type, 'content-encoding': 'gzip', 'content-length': gz.length });
      res.end(req.method === 'HEAD' ? undefined : gz);
      return;
    }
    reply(res, 200, req.method === 'HEAD' ? '' : body, type);
  });
}
