/**
 * A CertificateSource a test can steer: issue from a real CA, fail, or hold each request until the
 * test releases it. It records every call and the most requests it ever had in flight at once.
 */
import type { MeshCa } from '../ca.js';
import { issueWorkloadCertificate, type CertificateSource } from '../source.js';
import { formatSpiffeId, type SpiffeId } from '../spiffe.js';
import type { WorkloadCertificate } from '../tls.js';

export type SourceMode = 'issue' | 'fail' | 'hold';

interface Held {
  uri: string;
  release: () => void;
  fail: (err: Error) => void;
}

export class TestSource implements CertificateSource {
  mode: SourceMode = 'issue';
  /** Identities asked for, in call order. */
  readonly calls: string[] = [];
  readonly callTimes: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Requests waiting for release() in 'hold' mode. */
  readonly held: Held[] = [];
  /** Replace what an issued certificate looks like (to return a wrong or expired one). */
  tamper: ((cert: WorkloadCertificate) => WorkloadCertificate) | undefined;
  private callWaiters: Array<() => void> = [];

  constructor(
    private readonly ca: MeshCa,
    public ttlMs: number,
  ) {}

  fetchCertificate(id: SpiffeId): Promise<WorkloadCertificate> {
    const uri = formatSpiffeId(id);
    this.calls.push(uri);
    this.callTimes.push(Date.now());
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    for (const w of this.callWaiters.splice(0)) w();
    const issue = () => {
      const cert = issueWorkloadCertificate(this.ca, id, this.ttlMs);
      return this.tamper ? this.tamper(cert) : cert;
    };
    let p: Promise<WorkloadCertificate>;
    if (this.mode === 'fail') p = Promise.reject(new Error('CA unreachable'));
    else if (this.mode === 'issue') p = Promise.resolve(issue());
    else
      p = new Promise((resolve, reject) =>
        this.held.push({ uri, release: () => resolve(issue()), fail: reject }),
      );
    return p.finally(() => this.inFlight--);
  }

  /** Resolves once the source has been called `n` times in total. */
  async waitForCalls(n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((r) => this.callWaiters.push(r));
  }

  /** Release the oldest held request (or the one for `uri`). */
  release(uri?: string): void {
    const i = uri === undefined ? 0 : this.held.findIndex((h) => h.uri === uri);
    const [h] = i >= 0 ? this.held.splice(i, 1) : [];
    if (!h) throw new Error(`no held request${uri ? ` for ${uri}` : ''}`);
    h.release();
  }
}
