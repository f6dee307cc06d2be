/**
 * Can this process run capture mode? ztunnel checks at start that it can setns(2) and set SO_MARK
 * (CAP_SYS_ADMIN and CAP_NET_ADMIN); so do we, by opening one marked, transparent socket in our
 * own network namespace through the same path every pod socket takes. Fails with a MeshError
 * that says what is missing: Linux, the native addon, or root.
 */
import { closeSync } from 'node:fs';
import { MeshError, errorMessage } from '../errors.js';
import { MESH_PACKET_MARK, nativeAvailable, openSocket } from './native.js';

export interface CaptureSupportDeps {
  platform: NodeJS.Platform;
  nativeAvailable: () => boolean;
  /** Opens a socket as a pod socket is opened (setns, SO_MARK, IP_TRANSPARENT); returns its fd. */
  probe: () => number;
  close: (fd: number) => void;
  euid: number | undefined;
}

const DEFAULT_DEPS: CaptureSupportDeps = {
  platform: process.platform,
  nativeAvailable,
  probe: () => openSocket('/proc/self/ns/net', 4, MESH_PACKET_MARK, true),
  close: closeSync,
  euid: process.geteuid?.(),
};

const LOCAL_MODE = 'or run without --capture (local mode: loopback IPs and SOCKS5)';

export function assertCaptureSupported(deps: Partial<CaptureSupportDeps> = {}): void {
  const d = { ...DEFAULT_DEPS, ...deps };
  if (d.platform !== 'linux') {
    throw new MeshError('MESH_ERR_CAPTURE', `capture mode needs Linux (this is ${d.platform})`, {
      hint: `run meshd ztunnel without --capture: local mode works everywhere`,
    });
  }
  if (!d.nativeAvailable()) {
    throw new MeshError('MESH_ERR_CAPTURE', 'capture mode needs the native addon, which is not built', {
      hint: `run \`npm run build:native\` (needs python3, make and g++), ${LOCAL_MODE}`,
    });
  }
  let fd: number;
  try {
    fd = d.probe();
  } catch (err) {
    const code = (err as { code?: string }).code;
    const denied = code === 'EPERM' || code === 'EACCES';
    throw new MeshError(
      'MESH_ERR_CAPTURE',
      denied
        ? `capture mode needs root${d.euid !== undefined && d.euid !== 0 ? ` (running as uid ${d.euid})` : ''}: entering pod network namespaces needs CAP_SYS_ADMIN, and marking sockets CAP_NET_ADMIN (${errorMessage(err)})`
        : `capture mode cannot open a marked socket in a network namespace: ${errorMessage(err)}`,
      { cause: err, hint: denied ? `run as root (sudo), ${LOCAL_MODE}` : LOCAL_MODE },
    );
  }
  d.close(fd);
}
