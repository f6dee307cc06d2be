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
    expect(r.stdout).toMatch(
      /✓ frontend-0 → backend\.shop:8080: 20 requests over mTLS reach backends on both nodes/,
    );
    expect(r.stdout).toMatch(/✓ intruder-0 → backend\.shop:8080 is denied by the AuthorizationPolicy/);
    expect(r.stdout).toMatch(/demo check passed: \d+ checks/);
    expect(r.stdout).not.toMatch(/✗/);
    expect(readdirSync(join(dir, 'logs')).sort()).toEqual(['ztunnel-node-a.log', 'ztunnel-node-b.log']);
    expect(readdirSync(join(dir, 'ca')).sort()).toEqual(['root-cert.pem', 'root-key.pem']);
  });
});
