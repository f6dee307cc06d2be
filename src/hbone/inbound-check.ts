/**
 * The protocol checks an HBONE server runs on each stream before any policy, in ztunnel's order:
 * method must be CONNECT, the authority must be ip:port, [ipv6]:port or host:port, and an IP
 * authority must be the IP the client dialed (the listener's local IP). Each failure is a 400.
 * Pure function; the server maps the result to a response.
 */
import { parseAuthority, sameIp, type Authority } from './headers.js';

export type InboundCheck = { ok: true; authority: Authority } | { ok: false; status: 400; reason: string };

export interface InboundCheckInput {
  method: string | undefined;
  authority: string | undefined;
  /** The local IP of the HBONE connection (the destination workload's IP). */
  localIp: string;
  /**
   * Require an IP authority to equal `localIp` (ztunnel's validate_destination). A waypoint
   * turns this off: its authority is the original service VIP, checked by its own policy.
   */
  requireLocalIp: boolean;
}

export function buildInboundCheck(input: InboundCheckInput): InboundCheck {
  if (input.method !== 'CONNECT')
    return { ok: false, status: 400, reason: `method ${input.method ?? '(none)'} is not CONNECT` };
  const parsed = parseAuthority(input.authority);
  if (!parsed.ok) return { ok: false, status: 400, reason: parsed.reason };
  const a = parsed.authority;
  if (input.requireLocalIp && a.kind === 'ip' && !sameIp(a.ip, input.localIp))
    return { ok: false, status: 400, reason: `ip mismatch: ${input.localIp} != ${a.ip}` };
  return { ok: true, authority: a };
}
