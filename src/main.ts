#!/usr/bin/env node
/**
 * Process entry: read the version, run the command line, set the exit code. Nothing else in
 * meshd touches process.argv or process.exitCode.
 */
import { readFileSync } from 'node:fs';
import { COMMAND_MODULES, runCli } from './cli/index.js';

// dist/main.js and src/main.ts both sit one level below package.json.
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

process.exitCode = await runCli(
  process.argv,
  {
    version: pkg.version,
    io: { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) },
  },
  COMMAND_MODULES,
);
