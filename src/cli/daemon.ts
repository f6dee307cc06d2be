/**
 * Shared plumbing for long-running commands (`meshd ztunnel`, `meshd waypoint`): port flags,
 * config assembly, and signal handling. SIGTERM or SIGINT starts a graceful drain; a second
 * SIGINT exits at once, as ztunnel does.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { DEFAULT_PORTS, loadConfig, type Config, type ConfigOverrides, type PortsConfig } from '../config.js';
import { MeshError } from '../errors.js';
import { parseDuration } from '../telemetry/duration.js';
import type { GlobalOptions } from './context.js';

export interface DaemonFlags {
  trustDomain?: string;
  drainTimeout?: string;
  adminPort?: string;
  metricsPort?: string;
  readinessPort?: string;
  hbonePort?: string;
  socks5Port?: string;
}

const PORT_FLAGS: Array<[keyof DaemonFlags, keyof PortsConfig, string]> = [
  ['adminPort', 'admin', 'admin API (config_dump, logging, quitquitquit)'],
  ['metricsPort', 'metrics', 'Prometheus metrics'],
  ['readinessPort', 'readiness', 'readiness probe'],
  ['hbonePort', 'hbone', 'HBONE inbound, per workload'],
  ['socks5Port', 'socks5', 'SOCKS5 outbound entry, per workload'],
];

export function addDaemonOptions(cmd: Command): Command {
  cmd
    .option('--trust-domain <domain>', 'trust domain of the mesh (env TRUST_DOMAIN)')
    .option(
      '--drain-timeout <duration>',
      'on SIGTERM, how long live connections may finish (default 5s; env CONNECTION_TERMINATION_DEADLINE)',
    );
  for (const [flag, key, what] of PORT_FLAGS) {
    const name = flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    cmd.addOption(
      new Option(`--${name} <port>`, `port for the ${what} (default ${DEFAULT_PORTS[key]})`).hideHelp(),
    );
  }
  return cmd;
}

function port(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `--${flag} "${text}" is not a port number`, {
      hint: 'use a number from 0 to 65535',
    });
  }
  return n;
}

export function buildDaemonConfig(
  flags: DaemonFlags,
  globals: GlobalOptions,
  env: NodeJS.ProcessEnv,
): Readonly<Config> {
  const ports: Partial<PortsConfig> = {};
  for (const [flag, key] of PORT_FLAGS) {
    const v = flags[flag];
    if (v !== undefined)
      ports[key] = port(
        flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
        v,
      );
  }
  const overrides: ConfigOverrides = { logLevel: globals.logLevel, logFormat: globals.logFormat, ports };
  if (flags.trustDomain) overrides.trustDomain = flags.trustDomain;
  if (flags.drainTimeout) overrides.drainTimeoutMs = parseDuration(flags.drainTimeout, '--drain-timeout');
  return loadConfig(overrides, env);
}

/**
 * Run `shutdown` on SIGTERM/SIGINT; a second SIGINT exits immediately. Resolves when the daemon
 * has shut down (by signal or by its own quit path, reported through `stopped`).
 */
export function untilStopped(shutdown: () => Promise<unknown>, stopped: Promise<unknown>): Promise<void> {
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGINT' && ++interrupts > 1) process.exit(130);
    void shutdown();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return stopped.then(() => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  });
}
