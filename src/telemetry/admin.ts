/**
 * Admin HTTP API, bound to a local address only (as ztunnel's localhost:15000):
 *   GET  /config_dump          workloads, services, policies, certificates, effective config
 *   POST /logging[?level=L]    show or set the log level (405 for other methods, 400 if L is bad)
 *   POST /quitquitquit         start a graceful shutdown; answers once draining has begun
 * Anything else is 404.
 */
import type http from 'node:http';
import type { Logger } from './logger.js';
import { LOG_LEVELS, isLogLevel } from './logger.js';
import { createHttpServer, reply } from './http-server.js';

export interface AdminOptions {
  logger: Logger;
  configDump: () => unknown;
  /** Begin shutdown; resolves when the process may report that it is shutting down. */
  quit: () => void;
}

const INDEX = ['/config_dump', '/logging', '/quitquitquit'];

export function createAdminServer(opts: AdminOptions): http.Server {
  return createHttpServer(async (req, res, url) => {
    switch (url.pathname) {
      case '/': {
        const links = INDEX.map((p) => `<li><a href="${p}">${p}</a></li>`).join('');
        reply(
          res,
          200,
          `<!doctype html><title>meshd admin</title><ul>${links}</ul>\n`,
          'text/html; charset=utf-8',
        );
        return;
      }
      case '/config_dump': {
        if (req.method !== 'GET') return reply(res, 405, 'use GET\n');
        const dump = await Promise.resolve(opts.configDump());
        reply(res, 200, JSON.stringify(dump, null, 2) + '\n', 'application/json');
        return;
      }
      case '/logging': {
        if (req.method !== 'POST') return reply(res, 405, 'use POST /logging?level=<level>\n');
        const level = url.searchParams.get('level');
        if (level === null) return reply(res, 200, `current log level is ${opts.logger.level}\n`);
        if (!isLogLevel(level))
          return reply(res, 400, `invalid level "${level}": use one of ${LOG_LEVELS.join(', ')}\n`);
        opts.logger.level = level;
        opts.logger.info({ level }, 'log level changed');
        return reply(res, 200, `current log level is ${level}\n`);
      }
      case '/quitquitquit': {
        if (req.method !== 'POST') return reply(res, 405, 'use POST\n');
        reply(res, 200, 'shutdown now\n');
        opts.quit();
        return;
      }
      default:
        reply(res, 404, `not found; try ${INDEX.join(', ')}\n`);
    }
  });
}
