// Public face of state/: the workload model, the MeshState snapshot and its lookups, L4
// authorization and endpoint selection.
export * from './model.js';
export {
  MeshState,
  type MeshStateInput,
  type MeshStateOptions,
  type ServiceEndpoint,
  type WaypointResolution,
  type FindEndpointsOptions,
} from './store.js';
export {
  buildAuthzDecision,
  evaluatePolicies,
  policyMatches,
  NOT_ALLOWED_REASON,
  type AuthzDecision,
  type ConnectionAttributes,
  type DryRunResult,
} from './authz.js';
export {
  pickEndpoint,
  pickWeighted,
  filterByLocality,
  rankLocality,
  selectWorkloadIp,
  type PickEndpointInput,
} from './load-balance.js';
export {
  parseIp,
  isIp,
  formatIp,
  canonicalIp,
  parseCidr,
  cidrContains,
  isLoopbackIp,
  ipFamily,
  formatHostPort,
  type IpCidr,
  type IpFamily,
  type ParsedIp,
} from './ip.js';
