/**
 * Whether this process can run tests that need root, network namespaces and iptables. Such
 * tests call `describe.skipIf(!capture.ok)` and name `capture.reason` in their title, so a run
 * without privileges reports them as skipped with the reason instead of passing silently.
 */
import { execFileSync } from 'node:child_process';
import { nativeAvailable } from '../../src/capture/index.js';

function check(): { ok: boolean; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'needs Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root' };
  for (const tool of ['ip', 'iptables']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return { ok: false, reason: `needs ${tool} (apt-get install ${tool === 'ip' ? 'iproute2' : tool})` };
    }
  }
  const probe = `meshd-probe-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: 'cannot create network namespaces here' };
  }
  if (!nativeAvailable()) return { ok: false, reason: 'native addon not built (npm run build:native)' };
  return { ok: true, reason: '' };
}

export const capture = check();
/** Suffix for test titles: empty when runnable, "(skipped: needs root)" otherwise. */
export const captureNote = capture.ok ? '' : ` (skipped: ${capture.reason})`;
