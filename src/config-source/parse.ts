/**
 * Multi-document YAML → LocatedObject[]: each object keeps its file, its 1-based document index
 * (counting every document in the file, empty ones included, so "document 3" is the third
 * section) and the line where it starts.
 *
 * Only the structure every Kubernetes object shares is checked here: a mapping with string
 * apiVersion, kind and metadata.name, string label/annotation values. Namespaced kinds without
 * metadata.namespace get "default", as `kubectl apply` would give them; cluster-scoped kinds
 * keep none. Kind-specific checks live in the compilers.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import {
  ConfigValidationError,
  describeObject,
  type KubeObject,
  type LocatedObject,
  type SourceLocation,
} from './kube.js';

/** Kinds that have no namespace (the subset a mesh config file may reasonably contain). */
const CLUSTER_SCOPED_KINDS = new Set([
  'Node',
  'Namespace',
  'GatewayClass',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PersistentVolume',
  'StorageClass',
  'PriorityClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
]);

export function isClusterScoped(kind: string): boolean {
  return CLUSTER_SCOPED_KINDS.has(kind);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkStringMap(
  loc: SourceLocation,
  object: string,
  value: unknown,
  field: string,
): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isMapping(value)) {
    throw new ConfigValidationError(
      loc,
      object,
      field,
      'must be a mapping of strings',
      `write it as ${field}: {key: "value"}`,
    );
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new ConfigValidationError(
        loc,
        object,
        `${field}.${k}`,
        `must be a string, got ${v === null ? 'null' : typeof v} ${JSON.stringify(v)}`,
        `quote the value: ${k}: "${String(v)}" (Kubernetes label and annotation values are strings)`,
      );
    }
  }
  return value as Record<string, string>;
}

function toObject(raw: unknown, loc: SourceLocation): KubeObject {
  if (!isMapping(raw)) {
    throw new ConfigValidationError(
      loc,
      undefined,
      '',
      `a document must be a Kubernetes object (a mapping), got ${Array.isArray(raw) ? 'a list' : typeof raw}`,
      'start each document with apiVersion:, kind: and metadata:, separated by ---',
    );
  }
  const kindHint = typeof raw.kind === 'string' ? raw.kind : undefined;
  const meta = raw.metadata;
  const name = isMapping(meta) && typeof meta.name === 'string' ? meta.name : undefined;
  const object = kindHint && name ? describeObject({ kind: kindHint, metadata: { name } }) : kindHint;
  if (typeof raw.apiVersion !== 'string' || raw.apiVersion === '') {
    throw new ConfigValidationError(
      loc,
      object,
      'apiVersion',
      'missing or not a string',
      'add e.g. apiVersion: v1',
    );
  }
  if (typeof raw.kind !== 'string' || raw.kind === '') {
    throw new ConfigValidationError(loc, object, 'kind', 'missing or not a string', 'add e.g. kind: Pod');
  }
  if (!isMapping(meta)) {
    throw new ConfigValidationError(
      loc,
      object,
      'metadata',
      'missing or not a mapping',
      'add metadata: {name: ...}',
    );
  }
  if (typeof meta.name !== 'string' || meta.name === '') {
    throw new ConfigValidationError(
      loc,
      object,
      'metadata.name',
      'missing or not a string',
      'give the object a name',
    );
  }
  const kind = raw.kind;
  const objName = describeObject({ kind, metadata: { name: meta.name } });
  if (meta.namespace !== undefined && (typeof meta.namespace !== 'string' || meta.namespace === '')) {
    throw new ConfigValidationError(
      loc,
      objName,
      'metadata.namespace',
      'must be a non-empty string',
      'write the namespace name',
    );
  }
  const metadata = { ...meta, name: meta.name } as KubeObject['metadata'];
  if (isClusterScoped(kind)) delete metadata.namespace;
  else if (metadata.namespace === undefined) metadata.namespace = 'default';
  const described = describeObject({ kind, metadata });
  checkStringMap(loc, described, meta.labels, 'metadata.labels');
  checkStringMap(loc, described, meta.annotations, 'metadata.annotations');
  const obj: KubeObject = { ...raw, apiVersion: raw.apiVersion, kind, metadata };
  return obj;
}

/**
 * Parse YAML text. Throws ConfigValidationError on a syntax error (with its line) or a document
 * that is not a Kubernetes object. Empty documents are skipped.
 */
export function parseKubeYaml(text: string, file: string): LocatedObject[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(docs)) return []; // an empty stream
  const out: LocatedObject[] = [];
  docs.forEach((doc, i) => {
    const start = doc.contents?.range[0] ?? doc.range[0];
    const loc: SourceLocation = { file, document: i + 1, line: lineCounter.linePos(start).line };
    const err = doc.errors[0];
    if (err) {
      const where: SourceLocation = { ...loc, line: lineCounter.linePos(err.pos[0]).line };
      const msg = err.message.split('\n')[0] ?? err.message;
      throw new ConfigValidationError(
        where,
        undefined,
        '',
        `invalid YAML: ${msg}`,
        'fix the YAML syntax at this line',
      );
    }
    if (doc.contents === null) return;
    const raw: unknown = doc.toJS({ maxAliasCount: 1000 });
    if (raw === null || raw === undefined) return;
    out.push({ obj: toObject(raw, loc), loc });
  });
  return out;
}
