/**
 * Live inbound connections, kept so that authorization is enforced for their whole life, as
 * ztunnel does: when policy changes, every tracked connection is evaluated again against the new
 * state and the ones now denied are closed ("connection closed due to policy change", DENY).
 *
 * Invariants: a connection is registered before its upstream bytes flow and unregistered exactly
 * once when it ends; re-evaluation uses the destination workload as it is in the new state (a
 * workload that disappeared is left to its proxy's shutdown).
 */
import { buildAuthzDecision, type ConnectionAttributes, type MeshState } from '../state/index.js';

export interface TrackedConnection {
  attrs: ConnectionAttributes;
  /** Address the client connected from. */
  src: string;
  /** The destination the client asked for (the HBONE authority). */
  originalDst: string;
  /** The address actually dialed (the app). */
  actualDst: string;
  protocol: 'HBONE' | 'TCP';
  /** Close the connection because policy now denies it. */
  close(reason: string): void;
}

export const POLICY_CHANGE_REASON = 'connection closed due to policy change';

export class ConnectionManager {
  private readonly conns = new Set<TrackedConnection>();

  register(conn: TrackedConnection): () => void {
    this.conns.add(conn);
    return () => this.conns.delete(conn);
  }

  get size(): number {
    return this.conns.size;
  }

  /** Evaluate every live connection against `state`; close the denied ones. Returns how many closed. */
  reevaluate(state: MeshState): number {
    let closed = 0;
    for (const c of [...this.conns]) {
      const workload = state.findWorkloadByUid(c.attrs.workload.uid);
      if (!workload) continue;
      const decision = buildAuthzDecision(state, { ...c.attrs, workload });
      if (!decision.allow) {
        this.conns.delete(c);
        c.close(`${POLICY_CHANGE_REASON}: ${decision.reason}`);
        closed++;
      }
    }
    return closed;
  }

  /** Connections grouped by destination workload uid, for /config_dump. */
  dump(): Record<string, Array<{ src: string; originalDst: string; actualDst: string; protocol: string }>> {
    const out: Record<
      string,
      Array<{ src: string; originalDst: string; actualDst: string; protocol: string }>
    > = {};
    for (const c of this.conns) {
      (out[c.attrs.workload.uid] ??= []).push({
        src: c.src,
        originalDst: c.originalDst,
        actualDst: c.actualDst,
        protocol: c.protocol,
      });
    }
    return out;
  }
}
