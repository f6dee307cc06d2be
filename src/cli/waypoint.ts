/**
 * `meshd waypoint --config FILE --name NAME --namespace NS [--pod POD] [--ca-dir DIR]`: one
 * instance of a waypoint (an istio-waypoint Gateway) in local mode, listening on its pod's IP.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadOrCreateCa } from '../app.js';
import { LocalCaSource } from '../identity/index.js';
import { startWaypointDaemon } from '../waypoint/index.js';
import { globalOptionsOf, loggerFor, type CliContext } from './context.js';
import { addDaemonOptions, buildDaemonConfig, untilStopped, type DaemonFlags } from './daemon.js';

interface WaypointFlags extends DaemonFlags {
  config: string;
  name: string;
  namespace: string;
  pod?: string;
  caDir: string;
}

export function registerWaypointCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('waypoint')
    .description(
      'run one waypoint instance: the L7 proxy (routing, retries, timeouts, L7 authorization, faults) for the Services that use it',
    )
    .requiredOption(
      '--config <file>',
      'multi-document YAML of Kubernetes objects (the same file the ztunnels read); watched for changes',
    )
    .requiredOption('--name <name>', 'the waypoint Gateway (gatewayClassName: istio-waypoint)')
    .requiredOption('--namespace <ns>', "the Gateway's namespace")
    .option(
      '--pod <name>',
      'which instance Pod (labelled gateway.networking.k8s.io/gateway-name) this process is, when there are several',
    )
    .option('--ca-dir <dir>', 'mesh CA directory (created if it holds no CA)', './.meshd/ca');
  addDaemonOptions(cmd).action(async (flags: WaypointFlags, command: Command) => {
    const config = buildDaemonConfig(flags, globalOptionsOf(command), process.env);
    const logger = loggerFor(command);
    let stopped: () => void = () => undefined;
    const done = new Promise<void>((r) => (stopped = r));
    const ca = await loadOrCreateCa(resolve(flags.caDir), config.trustDomain, logger);
    const waypoint = await startWaypointDaemon({
      config,
      configPath: resolve(flags.config),
      name: flags.name,
      namespace: flags.namespace,
      pod: flags.pod,
      certificates: new LocalCaSource(ca, config.certTtlMs),
      version: ctx.version,
      logger,
      onExit: () => stopped(),
    });
    await untilStopped(() => waypoint.shutdown(), done);
  });
}
