/**
 * FileConfigSource: a local multi-document YAML file as the ConfigSource.
 *
 * Invariants:
 * - The snapshot in force is always the last file content that compiled; an invalid edit is
 *   logged, counted (meshd_config_reload_failures_total) and reported to onReloadError
 *   listeners, and changes nothing else.
 * - A reload whose bytes equal the content in force publishes nothing (no new generation).
 * - Reloads never overlap: a change seen during a reload schedules exactly one more.
 * - Change detection: fs.watch on the file's directory (editors that write a temp file and
 *   rename it over the original replace the inode, which a watch on the file itself would lose)
 *   plus a stat poll as a fallback for filesystems without inotify. Events are debounced so one
 *   save = one reload. With the defaults (100 ms debounce, 1 s poll) a change applies within
 *   about a second even when watch events are lost.
 * - Timers and the watcher never keep the process alive (unref / persistent: false).
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import type { Logger, Registry } from '../telemetry/index.js';
import { MeshError, errorMessage, isMeshError } from '../errors.js';
import { compileObjects } from './compile.js';
import type { CompileOptions } from './compile-types.js';
import { formatWarning } from './kube.js';
import { parseKubeYaml } from './parse.js';
import type { ConfigSource, MeshSnapshot } from './source.js';

export interface FileConfigSourceOptions {
  path: string;
  logger: Logger;
  registry: Registry;
  compile?: CompileOptions;
  /** Quiet period after a change event before reloading: 100 ms, enough to coalesce one save. */
  debounceMs?: number;
  /** Stat poll period, the fallback when watch events are lost: 1 s. */
  pollIntervalMs?: number;
  now?: () => number;
}

interface Metrics {
  failures: Counter;
  generation: Gauge;
  lastSuccess: Gauge;
}

function metric<T extends Counter | Gauge>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function buildMetrics(registry: Registry): Metrics {
  return {
    failures: metric(
      registry,
      'meshd_config_reload_failures_total',
      () =>
        new Counter({
          name: 'meshd_config_reload_failures_total',
          help: 'Config reloads rejected (invalid or unreadable); the previous config stays in force',
          registers: [registry],
        }),
    ),
    generation: metric(
      registry,
      'meshd_config_generation',
      () =>
        new Gauge({
          name: 'meshd_config_generation',
          help: 'Generation of the config snapshot in force (1 = first load)',
          registers: [registry],
        }),
    ),
    lastSuccess: metric(
      registry,
      'meshd_config_last_reload_success_timestamp_seconds',
      () =>
        new Gauge({
          name: 'meshd_config_last_reload_success_timestamp_seconds',
          help: 'Unix time of the last successful config load',
          registers: [registry],
        }),
    ),
  };
}

export class FileConfigSource implements ConfigSource {
  private readonly path: string;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  private readonly now: () => number;
  private snapshot: MeshSnapshot | undefined;
  private contentHash = '';
  private lastStat = '';
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly updateListeners = new Set<(s: MeshSnapshot) => void>();
  private readonly errorListeners = new Set<(err: unknown) => void>();

  constructor(private readonly opts: FileConfigSourceOptions) {
    this.path = resolve(opts.path);
    this.log = opts.logger.child({ component: 'config-source', file: this.path });
    this.metrics = buildMetrics(opts.registry);
    this.debounceMs = opts.debounceMs ?? 100;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<MeshSnapshot> {
    if (this.snapshot) return this.snapshot;
    const bytes = await this.read();
    const snap = this.compile(bytes, 1);
    this.publish(snap, bytes, false);
    this.lastStat = await this.statKey();
    this.startWatching();
    return snap;
  }

  current(): MeshSnapshot {
    if (!this.snapshot) {
      throw new MeshError('MESH_ERR_CONFIG', 'config requested before the first load', {
        hint: 'await FileConfigSource.start() before reading the config',
      });
    }
    return this.snapshot;
  }

  onUpdate(cb: (snapshot: MeshSnapshot) => void): () => void {
    this.updateListeners.add(cb);
    return () => this.updateListeners.delete(cb);
  }

  /** Called with the error of each rejected reload (the old snapshot stays in force). */
  onReloadError(cb: (err: unknown) => void): () => void {
    this.errorListeners.add(cb);
    return () => this.errorListeners.delete(cb);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    await this.reloading;
  }

  /** Re-read the file now (also what the watchers trigger). Resolves when applied or rejected. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = this.reloadOnce().finally(() => {
      this.reloading = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.reload();
      }
    });
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await this.read();
      if (this.hash(bytes) === this.contentHash) return;
      const prev = this.snapshot;
      this.publish(this.compile(bytes, (prev?.generation ?? 0) + 1), bytes, true);
    } catch (err) {
      this.metrics.failures.inc();
      const detail = isMeshError(err) ? err.describe() : errorMessage(err);
      this.log.error(
        { err: errorMessage(err), generation: this.snapshot?.generation },
        `config reload rejected; keeping generation ${this.snapshot?.generation ?? 0}: ${detail}`,
      );
      for (const cb of this.errorListeners) this.safely(() => cb(err));
    }
  }

  private async read(): Promise<Buffer> {
    try {
      return await readFile(this.path);
    } catch (err) {
      throw new MeshError('MESH_ERR_CONFIG', `cannot read config file ${this.path}: ${errorMessage(err)}`, {
        cause: err,
        hint: 'check the path given to --config and that the file is readable',
      });
    }
  }

  private compile(bytes: Buffer, generation: number): MeshSnapshot {
    const objects = parseKubeYaml(bytes.toString('utf8'), this.path);
    const compiled = compileObjects(objects, this.opts.compile);
    for (const note of compiled.notes) this.log.debug(note);
    return {
      generation,
      loadedAtMs: this.now(),
      nodes: compiled.nodes,
      state: compiled.state,
      objects,
      warnings: compiled.warnings,
    };
  }

  private publish(snap: MeshSnapshot, bytes: Buffer, notify: boolean): void {
    this.snapshot = snap;
    this.contentHash = this.hash(bytes);
    this.metrics.generation.set(snap.generation);
    this.metrics.lastSuccess.set(snap.loadedAtMs / 1000);
    for (const w of snap.warnings) this.log.warn(formatWarning(w));
    this.log.info(
      {
        generation: snap.generation,
        workloads: snap.state.workloads.length,
        services: snap.state.services.length,
        policies: snap.state.policies.length,
      },
      'config loaded',
    );
    if (!notify) return;
    for (const cb of this.updateListeners) this.safely(() => cb(snap));
  }

  private safely(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'config listener threw');
    }
  }

  private hash(bytes: Buffer): string {
    return createHash('sha256').update(bytes).digest('hex');
  }

  private async statKey(): Promise<string> {
    try {
      const s = await stat(this.path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.reload(), this.debounceMs);
    this.debounceTimer.unref();
  }

  private startWatching(): void {
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, filename) => {
        if (filename === null || filename.toString() === name) this.schedule();
      });
      this.watcher.on('error', (err) => {
        this.log.warn({ err: errorMessage(err) }, 'config directory watch failed; relying on polling');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'cannot watch the config directory; relying on polling');
    }
    this.pollTimer = setInterval(() => {
      void this.statKey().then((key) => {
        if (key !== this.lastStat) {
          this.lastStat = key;
          this.schedule();
        }
      });
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }
}
