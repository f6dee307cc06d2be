/**
 * The meshd command line: global options, one module per command group, and the single place
 * that turns a failure into an exit code and a message saying what to fix.
 *
 * Exit codes: 0 success (including --help and --version), 1 the command failed (a MeshError, printed
 * with its fix hint), 2 the command line itself is wrong (unknown command or option, missing value).
 */
import { Command, CommanderError, Option } from 'commander';
import { MeshError, errorMessage } from '../errors.js';
import { LOG_LEVELS } from '../telemetry/logger.js';
import type { CliContext, RegisterCommands } from './context.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export function buildProgram(ctx: CliContext, modules: readonly RegisterCommands[]): Command {
  const program = new Command('meshd')
    .description('An ambient service mesh: per-node ztunnel (HBONE mTLS) and per-namespace waypoints')
    .version(ctx.version, '-V, --version', 'print the meshd version')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(
      new Option('--log-format <format>', 'json for machines, pretty for a terminal')
        .choices(['json', 'pretty'])
        .default('json'),
    )
    // Set before any subcommand exists: commander copies these settings into each new subcommand.
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.out(s), writeErr: (s) => ctx.io.err(s) })
    .showHelpAfterError('(add --help for usage)');
  for (const register of modules) register(program, ctx);
  return program;
}

/** Parse `argv` (process.argv shape) and run the command; resolves to the exit code. */
export async function runCli(
  argv: readonly string[],
  ctx: CliContext,
  modules: readonly RegisterCommands[],
): Promise<number> {
  const program = buildProgram(ctx, modules);
  try {
    await program.parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    // Commander has already printed its own message (or the help/version text).
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    if (err instanceof MeshError) ctx.io.err(`meshd: ${err.describe()}\n`);
    else ctx.io.err(`meshd: unexpected error: ${errorMessage(err)}\n`);
    return EXIT_FAILED;
  }
}
