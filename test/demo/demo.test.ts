/**
 * The README's main job, as a user runs it: `meshd demo --check` starts the bundled two-node
 * mesh (127.0.1.x / 127.0.2.x), sends traffic, verifies it and exits 0; `meshd demo` runs until
 * Ctrl-C and says so when one of its daemons dies under it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { socksConnect } from '../../src/demo/socks5-client.js';
import { MAIN, runCli } from '../helpers/process.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('meshd demo --check', () => {
  it('runs the bundled mesh and passes every check', async () => {
    const r = await runCli(['demo', '--check', '--dir', dir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const line of [
      /✓ frontend-0 → backend\.shop:8080: 20 requests reach the v1 backends on both nodes/,
      /✓ access logs show both mTLS identities/,
      /✓ the waypoint routes x-canary: true to v2/,
      /✓ a WebSocket through the waypoint: upgraded \(101\), routed by x-canary to v2, echoed/,
      /✓ the waypoint splits other traffic 90\/10/,
      /✓ L7 policy at the waypoint: \/admin is denied with 403/,
      /✓ intruder-0 → backend\.shop:8080 is denied at the waypoint \(403\)/,
      /✓ intruder-0 → backend-0 by pod IP \(bypassing the waypoint\) is denied at L4/,
    ]) {
      expect(r.stdout).toMatch(line);
    }
    expect(r.stdout).toMatch(/demo check passed: \d+ checks/);
    expect(r.stdout).not.toMatch(/✗/);
    expect(readdirSync(join(dir, 'logs')).sort()).toEqual([
      'waypoint-shop-waypoint-0.log',
      'ztunnel-node-a.log',
      'ztunnel-node-b.log',
    ]);
    expect(readdirSync(join(dir, 'ca')).sort()).toEqual(['root-cert.pem', 'root-key.pem']);
  });
});

/** Pids of processes whose command line contains every one of `parts` (Linux /proc). */
function findProcesses(...parts: string[]): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        return parts.every((p) => cmd.includes(p));
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(process.platform !== 'linux')('meshd demo (interactive)', () => {
  it('reports a daemon killed under it, keeps the rest running, fails closed, and stops on Ctrl-C', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'meshd-demo-run-'));
    const demo = spawn(process.execPath, [MAIN, 'demo', '--dir', runDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    demo.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = once(demo, 'exit');
    try {
      await waitFor('the banner', () => out.includes('Ctrl-C stops everything.'));
      const [waypoint] = findProcesses('waypoint', '--ca-dir', join(runDir, 'ca'));
      expect(waypoint).toBeGreaterThan(0);
      process.kill(waypoint!, 'SIGKILL');
      await waitFor('the exit notice', () => out.includes('was killed by SIGKILL'));
      expect(out).toContain(
        `meshd demo: waypoint shop/waypoint-0 was killed by SIGKILL; the rest of the mesh keeps running`,
      );
      expect(out).toContain(join(runDir, 'logs', 'waypoint-shop-waypoint-0.log'));
      // The service behind the waypoint now fails closed: the SOCKS5 CONNECT is refused.
      await expect(socksConnect({ host: '127.0.1.10', port: 15080 }, 'backend.shop:8080')).rejects.toThrow();
      // The legacy (non-mesh) service still answers through the ztunnel: the daemon is alive.
      const s = await socksConnect({ host: '127.0.1.10', port: 15080 }, 'legacy-web.legacy:8080');
      s.destroy();
      demo.kill('SIGINT');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
      expect(out).toContain('stopping the demo mesh');
      expect(out.match(/was killed by|exited with code/g)).toHaveLength(1);
      expect(findProcesses('--ca-dir', join(runDir, 'ca'))).toEqual([]);
    } finally {
      if (demo.exitCode === null) {
        demo.kill('SIGKILL');
        await exited;
      }
      for (const pid of findProcesses('--ca-dir', join(runDir, 'ca'))) process.kill(pid, 'SIGKILL');
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});
