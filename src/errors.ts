/**
 * MeshError: the one base class for exceptional failures in meshd.
 *
 * Every error carries a stable machine-readable `code` (MESH_ERR_*), an optional `cause`, and a
 * `hint` telling the operator what to do. Expected hot-path outcomes (no route, policy deny) are
 * returned as values, not thrown (see STYLE.md); this class is for the exceptional cases.
 */
export type MeshErrorCode =
  | 'MESH_ERR_CONFIG'
  | 'MESH_ERR_INVALID_ARGUMENT'
  | 'MESH_ERR_SPIFFE_INVALID'
  | 'MESH_ERR_CA_MISSING'
  | 'MESH_ERR_CA_EXISTS'
  | 'MESH_ERR_CA_INVALID'
  | 'MESH_ERR_CA_TRUST_DOMAIN'
  | 'MESH_ERR_CA_TTL'
  | 'MESH_ERR_CA_CSR'
  | 'MESH_ERR_CERT_UNAVAILABLE'
  | 'MESH_ERR_HBONE_BAD_AUTHORITY'
  | 'MESH_ERR_HBONE_STATUS'
  | 'MESH_ERR_HBONE_TLS'
  | 'MESH_ERR_HBONE_IDENTITY'
  | 'MESH_ERR_HBONE_CONNECT_TIMEOUT'
  | 'MESH_ERR_HBONE_CONNECT'
  | 'MESH_ERR_HBONE_SESSION'
  | 'MESH_ERR_ROUTE'
  | 'MESH_ERR_LOOP'
  | 'MESH_ERR_SOCKS5'
  | 'MESH_ERR_BIND'
  | 'MESH_ERR_DRAINING'
  | 'MESH_ERR_WAYPOINT'
  | 'MESH_ERR_CAPTURE'
  | 'MESH_ERR_CHECK_FAILED';

export class MeshError extends Error {
  readonly code: MeshErrorCode;
  readonly hint: string | undefined;

  constructor(code: MeshErrorCode, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MeshError';
    this.code = code;
    this.hint = options.hint;
  }

  /** One line for a terminal: the message, then what to do about it. */
  describe(): string {
    return this.hint ? `${this.message}\n  fix: ${this.hint}` : this.message;
  }
}

export function isMeshError(err: unknown, code?: MeshErrorCode): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}

/** The message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
