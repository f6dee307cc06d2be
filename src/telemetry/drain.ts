/**
 * Graceful shutdown. Every component that accepts connections registers a Drainable. On drain:
 * each stops accepting and asks its live connections to finish (HBONE sends GOAWAY); when all
 * have finished, or when the deadline passes, whatever remains is closed. Draining twice joins
 * the first drain.
 */
export interface Drainable {
  /** Stop accepting; resolve when every live connection has ended on its own. */
  drain(): Promise<void>;
  /** Close whatever remains, now. */
  forceClose(): void | Promise<void>;
}

export interface DrainResult {
  /** True if everything finished before the deadline. */
  graceful: boolean;
  durationMs: number;
}

export class DrainController {
  private readonly parts: Drainable[] = [];
  private running: Promise<DrainResult> | undefined;

  add(part: Drainable): void {
    this.parts.push(part);
  }

  get draining(): boolean {
    return this.running !== undefined;
  }

  drain(deadlineMs: number): Promise<DrainResult> {
    this.running ??= this.run(deadlineMs);
    return this.running;
  }

  private async run(deadlineMs: number): Promise<DrainResult> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const finished = Promise.allSettled(this.parts.map((p) => p.drain())).then(() => 'finished' as const);
    const outcome = await Promise.race([finished, deadline]);
    clearTimeout(timer);
    await Promise.allSettled(this.parts.map((p) => Promise.resolve().then(() => p.forceClose())));
    return { graceful: outcome === 'finished', durationMs: Date.now() - started };
  }
}
