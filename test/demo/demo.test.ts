/**
 * The README's main job, as a user runs it: `meshd demo --check` starts the bundled two-node
 * mesh (127.0.1.x / 127.0.2.x), sends traffic, verifies it and exits 0.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/process.js';

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
