/**
 * Kubernetes objects as read from YAML (or, later, from the API server), with where each came
 * from, so that every validation error can name the file, the document, the object, the field
 * and the fix.
 */
import { MeshError } from '../errors.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** RFC 3339; used for Gateway API route precedence (oldest first). */
  creationTimestamp?: string;
  uid?: string;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
}

export interface SourceLocation {
  /** Path of the file, or a label such as "<inline>". */
  file: string;
  /** 1-based index of the YAML document within the file. */
  document: number;
  /** 1-based line where the document starts, when known. */
  line?: number;
}

export interface LocatedObject {
  obj: KubeObject;
  loc: SourceLocation;
}

/** `Pod shop/frontend` style reference used in messages. */
export function describeObject(obj: Pick<KubeObject, 'kind' | 'metadata'>): string {
  const ns = obj.metadata.namespace ? `${obj.metadata.namespace}/` : '';
  return `${obj.kind} ${ns}${obj.metadata.name}`;
}

function describeLocation(loc: SourceLocation): string {
  return `${loc.file}: document ${loc.document}${loc.line !== undefined ? ` (line ${loc.line})` : ''}`;
}

/**
 * A config file error. Message shape:
 *   demo.yaml: document 3 (line 41): Service shop/backend: spec.ports[0].targetPort: "http" is not a port of any selected pod
 *   fix: name a containerPort of the pods, or use a number
 */
export class ConfigValidationError extends MeshError {
  readonly loc: SourceLocation;
  readonly field: string;
  readonly object: string | undefined;

  constructor(loc: SourceLocation, object: string | undefined, field: string, problem: string, fix: string) {
    super(
      'MESH_ERR_CONFIG',
      `${describeLocation(loc)}: ${object ? object + ': ' : ''}${field ? field + ': ' : ''}${problem}`,
      {
        hint: fix,
      },
    );
    this.name = 'ConfigValidationError';
    this.loc = loc;
    this.field = field;
    this.object = object;
  }
}

/** A non-fatal finding (e.g. an L7 ALLOW rule dropped at ztunnel), reported like an error. */
export interface ConfigWarning {
  loc: SourceLocation;
  object: string;
  field: string;
  message: string;
}

export function formatWarning(w: ConfigWarning): string {
  return `${describeLocation(w.loc)}: ${w.object}: ${w.field ? w.field + ': ' : ''}${w.message}`;
}
