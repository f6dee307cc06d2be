/**
 * Network namespaces for tests: created with iproute2, removed in cleanup. Every namespace a
 * test makes is named meshd-t-<pid>-<n> so a crashed run's leftovers are recognisable.
 */
import { execFileSync } from 'node:child_process';

let counter = 0;

export interface TestNetns {
  name: string;
  path: string;
  exec(cmd: string, args: string[]): string;
  remove(): void;
}

export function createNetns(): TestNetns {
  const name = `meshd-t-${process.pid}-${counter++}`;
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    path: `/var/run/netns/${name}`,
    exec: (cmd, args) => execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8' }),
    remove: () => {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    },
  };
}
