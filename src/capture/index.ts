/** capture/: Linux traffic capture support (network namespaces, SO_ORIGINAL_DST, SO_MARK). */
export {
  MESH_PACKET_MARK,
  getOriginalDst,
  listenSocket,
  nativeAvailable,
  openSocket,
  setMark,
  type OriginalDst,
} from './native.js';
export { assertCaptureSupported, type CaptureSupportDeps } from './support.js';
