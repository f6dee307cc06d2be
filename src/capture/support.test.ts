import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { assertCaptureSupported, type CaptureSupportDeps } from './support.js';

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('assertCaptureSupported', () => {
  const ok: CaptureSupportDeps = {
    platform: 'linux',
    nativeAvailable: () => true,
    probe: () => 42,
    close: () => undefined,
    euid: 0,
  };
  const cases: Array<[string, Partial<CaptureSupportDeps>, RegExp, RegExp]> = [
    ['not Linux', { platform: 'darwin' }, /needs Linux \(this is darwin\)/, /without --capture/],
    ['addon missing', { nativeAvailable: () => false }, /native addon/, /npm run build:native/],
    [
      'not root',
      {
        euid: 1000,
        probe: () => {
          throw errno('EPERM', 'setns(netns): Operation not permitted');
        },
      },
      /needs root \(running as uid 1000\).*CAP_SYS_ADMIN/,
      /run as root/,
    ],
    [
      'other failure',
      {
        probe: () => {
          throw errno('ENOPROTOOPT', 'setsockopt(IP_TRANSPARENT): Protocol not available');
        },
      },
      /cannot open a marked socket.*IP_TRANSPARENT/,
      /without --capture/,
    ],
  ];
  it.each(cases)('%s: fails with what is missing and how to fix it', (_name, deps, message, hint) => {
    let caught: unknown;
    try {
      assertCaptureSupported({ ...ok, ...deps });
    } catch (err) {
      caught = err;
    }
    expect(isMeshError(caught, 'MESH_ERR_CAPTURE')).toBe(true);
    const e = caught as Error & { hint?: string };
    expect(e.message).toMatch(message);
    expect(e.hint).toMatch(hint);
  });

  it('passes, and closes the probe socket, when everything is there', () => {
    const closed: number[] = [];
    assertCaptureSupported({ ...ok, close: (fd) => closed.push(fd) });
    expect(closed).toEqual([42]);
  });
});
