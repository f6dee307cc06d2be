/**
 * ConfigSource: where the data plane's model comes from. The local file is the first
 * implementation; an xDS client will be another, so consumers depend only on this interface.
 *
 * Invariants for every implementation:
 * - start() resolves with the first valid snapshot, or rejects (ConfigValidationError for an
 *   invalid config); nothing is published before it resolves.
 * - current() always returns the last valid snapshot; an invalid update never replaces it.
 * - generation increases by one with every published snapshot, starting at 1.
 */
import type { MeshState } from '../state/index.js';
import type { NodeInfo } from './compile-types.js';
import type { ConfigWarning, LocatedObject } from './kube.js';

export interface MeshSnapshot {
  /** 1 for the first load, +1 per applied change. */
  generation: number;
  /** Wall-clock time the snapshot was built (ms since the epoch). */
  loadedAtMs: number;
  /** Node name → its address (where its daemon ports listen in local mode) and labels. */
  nodes: ReadonlyMap<string, NodeInfo>;
  state: MeshState;
  /** Every object of the config, compiled or not (for the waypoint compiler and /config_dump). */
  objects: readonly LocatedObject[];
  warnings: readonly ConfigWarning[];
}

export interface ConfigSource {
  /** First load. Rejects with ConfigValidationError if the config is invalid. */
  start(): Promise<MeshSnapshot>;
  /** The snapshot in force. Throws a MeshError if called before start() resolved. */
  current(): MeshSnapshot;
  /** Called with each new snapshot after the first. Returns an unsubscribe function. */
  onUpdate(cb: (snapshot: MeshSnapshot) => void): () => void;
  stop(): Promise<void>;
}
