/** cli/: the meshd command line. main.ts is the only caller. */
export { buildProgram, runCli, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './program.js';
export {
  globalOptionsOf,
  loggerFor,
  type CliContext,
  type CliIo,
  type GlobalOptions,
  type RegisterCommands,
} from './context.js';
export { registerCaCommands } from './ca.js';
export { registerZtunnelCommand } from './ztunnel.js';
export { registerDemoCommand } from './demo.js';
export { registerWaypointCommand } from './waypoint.js';

import { registerCaCommands } from './ca.js';
import type { RegisterCommands } from './context.js';
import { registerZtunnelCommand } from './ztunnel.js';
import { registerDemoCommand } from './demo.js';
import { registerWaypointCommand } from './waypoint.js';

/** Every command group, in help order. `meshd ztunnel`, `waypoint` and `demo` are added here. */
export const COMMAND_MODULES: readonly RegisterCommands[] = [
  registerDemoCommand,
  registerZtunnelCommand,
  registerWaypointCommand,
  registerCaCommands,
];
