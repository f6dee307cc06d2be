// Public face of config-source/: Kubernetes YAML → the L4 model, and the ConfigSource that
// keeps it current.
export {
  ConfigValidationError,
  describeObject,
  formatWarning,
  type ConfigWarning,
  type KubeObject,
  type LocatedObject,
  type ObjectMeta,
  type SourceLocation,
} from './kube.js';
export { parseKubeYaml, isClusterScoped } from './parse.js';
export { compileObjects, compileYaml, resolveCompileOptions, type CompiledConfig } from './compile.js';
export { DEFAULT_COMPILE_OPTIONS, type CompileOptions, type NodeInfo } from './compile-types.js';
export { DATAPLANE_MODE_LABEL, GATEWAY_NAME_LABEL } from './compile-workloads.js';
export {
  USE_WAYPOINT_LABEL,
  USE_WAYPOINT_NAMESPACE_LABEL,
  WAYPOINT_FOR_LABEL,
  WAYPOINT_CLASS,
} from './compile-waypoints.js';
export { NETNS_ANNOTATION, NETNS_DIR, buildPodNetnsIndex, parseNetnsAnnotation } from './pod-netns.js';
export type { ConfigSource, MeshSnapshot } from './source.js';
export { FileConfigSource, type FileConfigSourceOptions } from './file-source.js';
