/** telemetry/: logging, metrics, admin, readiness and drain: the operational surface of every daemon. */
export {
  LOG_LEVELS,
  createLogger,
  isLogLevel,
  silentLogger,
  type LogFormat,
  type Logger,
  type LoggerOptions,
} from './logger.js';
export { Registry, createRegistry, readMetric, type RegistryOptions } from './metrics.js';
export { formatDuration, parseDuration } from './duration.js';
export { closeServer, createHttpServer, listen, reply, type Handler } from './http-server.js';
export { createAdminServer, type AdminOptions } from './admin.js';
export { createMetricsServer } from './metrics-server.js';
export { Readiness, createReadinessServer } from './readiness.js';
export { DrainController, type DrainResult, type Drainable } from './drain.js';
