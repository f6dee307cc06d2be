/**
 * `meshd demo [--check]`: the README's main job. Runs the bundled two-node mesh
 * (examples/demo.yaml) on loopback, prints commands to try, and stops everything on Ctrl-C.
 * With --check it sends traffic through the mesh, verifies it, and exits 0 or 1.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo } from '../demo/index.js';
import { MeshError } from '../errors.js';
import { globalOptionsOf, type CliContext } from './context.js';

// dist/cli/demo.js → the package root is two levels up.
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface DemoFlags {
  config: string;
  dir: string;
  check: boolean;
}

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('run a two-node demo mesh on loopback: two ztunnels and sample apps from examples/demo.yaml')
    .option('--config <file>', 'the mesh to run', resolve(PACKAGE_ROOT, 'examples', 'demo.yaml'))
    .option('--dir <dir>', 'where the demo keeps its CA and logs', '.meshd-demo')
    .option(
      '--check',
      'send traffic through the mesh, verify identities, metrics and policy, then exit 0 or 1',
      false,
    )
    .action(async (flags: DemoFlags, command: Command) => {
      const { logLevel } = globalOptionsOf(command);
      let interrupted: () => void = () => undefined;
      const untilInterrupted = () =>
        new Promise<void>((r) => {
          interrupted = r;
        });
      const onSignal = () => interrupted();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const code = await runDemo({
          configPath: resolve(flags.config),
          dir: resolve(flags.dir),
          main: resolve(PACKAGE_ROOT, 'dist', 'main.js'),
          check: flags.check,
          logLevel,
          out: (t) => ctx.io.out(t),
          untilInterrupted,
        });
        if (code !== 0) {
          throw new MeshError('MESH_ERR_CHECK_FAILED', 'the demo check failed (see the ✗ lines above)', {
            hint: `read the daemons' logs in ${resolve(flags.dir, 'logs')}`,
          });
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
