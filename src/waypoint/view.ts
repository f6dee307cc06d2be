/**
 * WaypointView: one immutable, consistent view of the waypoint's configuration — the compiled
 * L7 config and the workload model it was compiled with. Each request is planned and routed
 * against the view in force when it arrived; a config change publishes a new view.
 */
import type { MeshState } from '../state/index.js';
import type { WaypointConfig } from './config.js';

export interface WaypointView {
  /** The config source's generation this view was built from. */
  generation: number;
  config: WaypointConfig;
  state: MeshState;
}
