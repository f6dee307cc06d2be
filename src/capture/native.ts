/**
 * Typed access to the meshd_native addon (native/meshd_native.c): SO_ORIGINAL_DST, SO_MARK and
 * sockets created inside a network namespace. Loaded lazily; when it is missing (not built, or
 * not Linux) every call fails with a MeshError that says how to build it.
 */
import { createRequire } from 'node:module';
import { MeshError } from '../errors.js';

export interface OriginalDst {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

interface NativeModule {
  getOriginalDst(fd: number): OriginalDst;
  setMark(fd: number, mark: number): void;
  openSocket(netnsPath: string | null, family: 4 | 6, mark: number, transparent: number): number;
  listenSocket(
    netnsPath: string | null,
    host: string,
    port: number,
    backlog: number,
    mark: number,
    reusePort: number,
  ): number;
}

/** The packet mark on every socket the daemon opens in capture mode: 0x539 (1337), as Istio's in-pod mode. */
export const MESH_PACKET_MARK = 0x539;

let loaded: NativeModule | Error | undefined;

function load(): NativeModule {
  if (loaded === undefined) {
    try {
      const require = createRequire(import.meta.url);
      const mod = require('../../native/build/Release/meshd_native.node') as Partial<NativeModule>;
      loaded =
        typeof mod.getOriginalDst === 'function'
          ? (mod as NativeModule)
          : new Error('this platform has no capture support (Linux only)');
    } catch (err) {
      loaded = err instanceof Error ? err : new Error(String(err));
    }
  }
  if (loaded instanceof Error) {
    throw new MeshError('MESH_ERR_CAPTURE', `the native capture addon is unavailable: ${loaded.message}`, {
      cause: loaded,
      hint: 'capture mode needs Linux; build the addon with `npm run build:native` (needs python3, make and g++)',
    });
  }
  return loaded;
}

export function nativeAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

/** The destination a connection had before iptables REDIRECT rewrote it. */
export function getOriginalDst(fd: number): OriginalDst {
  return load().getOriginalDst(fd);
}

export function setMark(fd: number, mark: number): void {
  load().setMark(fd, mark);
}

/**
 * A non-blocking TCP socket created inside `netnsPath` (or the current netns when null), marked.
 * `transparent` sets IP_TRANSPARENT, so the socket may bind a non-local source address (the
 * original client's IP when dialing the app on its behalf).
 */
export function openSocket(netnsPath: string | null, family: 4 | 6, mark = 0, transparent = false): number {
  return load().openSocket(netnsPath, family, mark, transparent ? 1 : 0);
}

/** A bound, listening TCP socket inside `netnsPath` (or the current netns when null). */
export function listenSocket(
  netnsPath: string | null,
  host: string,
  port: number,
  opts: { backlog?: number; mark?: number; reusePort?: boolean } = {},
): number {
  return load().listenSocket(
    netnsPath,
    host,
    port,
    opts.backlog ?? 128,
    opts.mark ?? 0,
    opts.reusePort ? 1 : 0,
  );
}
