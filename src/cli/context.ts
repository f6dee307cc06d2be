/**
 * What every CLI command module receives: the version, where to write, and how to build the
 * logger the global --log-level/--log-format options ask for. Commands stay thin: they parse
 * flags, call into the library folders, and print a short result.
 */
import type { Command } from 'commander';
import { createLogger, type LogFormat, type Logger } from '../telemetry/logger.js';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export interface CliContext {
  version: string;
  io: CliIo;
}

export interface GlobalOptions {
  logLevel: string;
  logFormat: LogFormat;
}

/** The global options as seen from inside any (sub)command's action. */
export function globalOptionsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** The process's root logger, configured from the global options (daemons log to stdout). */
export function loggerFor(command: Command, destination: number = 1): Logger {
  const { logLevel, logFormat } = globalOptionsOf(command);
  return createLogger({ level: logLevel, format: logFormat, destination });
}

/** A command module adds its commands to the program; main.ts lists the modules. */
export type RegisterCommands = (program: Command, ctx: CliContext) => void;
