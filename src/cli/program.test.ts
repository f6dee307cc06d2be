import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { MeshError } from '../errors.js';
import { globalOptionsOf, loggerFor, type CliContext, type GlobalOptions } from './context.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, runCli } from './program.js';

/** A context that captures output, and a command module that records what its action saw. */
function harness(action: (cmd: Command) => Promise<void> | void = () => undefined) {
  const out: string[] = [];
  const err: string[] = [];
  const seen: GlobalOptions[] = [];
  const ctx: CliContext = { version: '9.9.9', io: { out: (s) => out.push(s), err: (s) => err.push(s) } };
  const module = (program: Command) => {
    program
      .command('probe')
      .option('--n <n>', 'a number')
      .action(async (_opts: unknown, cmd: Command) => {
        seen.push(globalOptionsOf(cmd));
        await action(cmd);
      });
  };
  const go = (...args: string[]) => runCli(['node', 'meshd', ...args], ctx, [module]);
  return { out, err, seen, go };
}

describe('runCli', () => {
  it('passes the global log options to every command, before or after the command name', async () => {
    const h = harness();
    expect(await h.go('probe')).toBe(EXIT_OK);
    expect(await h.go('--log-level', 'debug', 'probe')).toBe(EXIT_OK);
    expect(await h.go('probe', '--log-format', 'pretty')).toBe(EXIT_OK);
    expect(h.seen).toEqual([
      { logLevel: 'info', logFormat: 'json' },
      { logLevel: 'debug', logFormat: 'json' },
      { logLevel: 'info', logFormat: 'pretty' },
    ]);
  });

  it('builds the logger the global options ask for', async () => {
    let level = '';
    const h = harness((cmd) => {
      level = loggerFor(cmd).level;
    });
    expect(await h.go('--log-level', 'warn', 'probe')).toBe(EXIT_OK);
    expect(level).toBe('warn');
  });

  it.each<[string, () => never, number, string]>([
    [
      'a MeshError, with its fix',
      () => {
        throw new MeshError('MESH_ERR_CONFIG', 'bad thing', { hint: 'do the other thing' });
      },
      EXIT_FAILED,
      'meshd: bad thing\n  fix: do the other thing\n',
    ],
    [
      'any other error, without a stack',
      () => {
        throw new Error('boom');
      },
      EXIT_FAILED,
      'meshd: unexpected error: boom\n',
    ],
  ])('turns %s into exit code 1 and one message', async (_name, fail, code, message) => {
    const h = harness(fail);
    expect(await h.go('probe')).toBe(code);
    expect(h.err.join('')).toBe(message);
  });

  it.each([
    [['--version'], EXIT_OK, /^9\.9\.9\n$/, ''],
    [['--help'], EXIT_OK, /Usage: meshd/, ''],
    [['nope'], EXIT_USAGE, /^$/, "error: unknown command 'nope'"],
    [['probe', '--bogus'], EXIT_USAGE, /^$/, "error: unknown option '--bogus'"],
    [['--log-level', 'loud', 'probe'], EXIT_USAGE, /^$/, "argument 'loud' is invalid"],
    [['probe', '--n'], EXIT_USAGE, /^$/, "error: option '--n <n>' argument missing"],
  ])('meshd %j exits %i', async (args, code, stdout, stderr) => {
    const h = harness();
    expect(await h.go(...args)).toBe(code);
    expect(h.out.join('')).toMatch(stdout);
    expect(h.err.join('')).toContain(stderr);
    expect(h.seen).toEqual([]);
  });
});
