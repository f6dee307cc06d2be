/**
 * Metrics registry factory. meshd never touches prom-client's global registry: each daemon (and
 * each test) builds its own Registry and injects it into the components that record metrics, so
 * two daemons in one process never share counters.
 */
import { Registry, collectDefaultMetrics, Gauge } from 'prom-client';

export { Registry } from 'prom-client';

export interface RegistryOptions {
  /** Collect process_* and nodejs_* metrics (fds, RSS, event-loop lag). On for daemons. */
  processMetrics?: boolean;
  component?: string;
  version?: string;
}

export function createRegistry(opts: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  if (opts.component) {
    const build = new Gauge({
      name: 'istio_build',
      help: 'Build information of the running component (unstable)',
      labelNames: ['component', 'tag'],
      registers: [registry],
    });
    build.set({ component: opts.component, tag: opts.version ?? 'unknown' }, 1);
  }
  return registry;
}

/** Read one sample from a registry, for tests and /config_dump. Returns 0 if absent. */
export async function readMetric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  let sum = 0;
  for (const v of data.values) {
    const l = v.labels as Record<string, string | number>;
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) sum += v.value;
  }
  return sum;
}
