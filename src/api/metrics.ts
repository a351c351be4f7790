import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Embedder } from '../engine/embedder.ts';
import type { BatchReport } from '../engine/scheduler.ts';

/** The server's Prometheus metrics, in a registry of its own (several servers may share a process in tests). */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'tessera_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  private readonly duration = new Histogram({ name: 'tessera_request_duration_seconds', help: 'HTTP request duration', labelNames: ['route'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  private readonly batchSize = new Histogram({ name: 'tessera_batch_size', help: 'items per model run', labelNames: ['model', 'modality'], buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry] });
  private readonly batchSeconds = new Histogram({ name: 'tessera_batch_inference_seconds', help: 'duration of one model run', labelNames: ['model', 'modality'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120], registers: [this.registry] });
  private readonly queueSeconds = new Histogram({ name: 'tessera_queue_wait_seconds', help: 'longest wait of an item in a batch before it ran', labelNames: ['model', 'modality'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  private readonly items = new Counter({ name: 'tessera_items_total', help: 'items embedded', labelNames: ['model', 'modality'], registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'tessera_usage_tokens_total', help: 'tokens billed', labelNames: ['kind'], registers: [this.registry] });
  private readonly sharedLimits = new Gauge({ name: 'tessera_limits_shared', help: '1 while the per-key rate limits are kept in Redis, shared by the replicas (--queue); 0 while this replica applies them alone', registers: [this.registry] });
  /** The embedders followed, by served model name. */
  private readonly watched = new Map<string, Embedder>();
  private readonly resident = new Gauge({
    name: 'tessera_model_resident_bytes',
    help: 'estimated memory a model takes: the growth of the process RSS while it loaded (models load one after another)',
    labelNames: ['model'],
    registers: [this.registry],
  });

  private readonly folders = new Map<string, (() => number)[]>();
  private readonly watchSeen = new Counter({ name: 'tessera_watch_files_seen_total', help: 'changed files of --watch folders handed to indexing once settled, and files their scans looked at', labelNames: ['collection'], registers: [this.registry] });
  private readonly watchIndexed = new Counter({ name: 'tessera_watch_indexed_total', help: 'documents of --watch folders written (added or updated)', labelNames: ['collection'], registers: [this.registry] });
  private readonly watchRemoved = new Counter({ name: 'tessera_watch_removed_total', help: 'documents removed because their file in a --watch folder went', labelNames: ['collection'], registers: [this.registry] });
  private readonly watchFailed = new Counter({ name: 'tessera_watch_failed_total', help: 'files of --watch folders that could not be indexed (each failure counts)', labelNames: ['collection'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tessera_' });
    this.sharedLimits.set(0);
    const folders = this.folders;
    new Gauge({
      name: 'tessera_watch_pending', help: 'changes noticed in --watch folders and not yet written', labelNames: ['collection'], registers: [this.registry],
      collect() {
        for (const [collection, pending] of folders) this.set({ collection }, pending.reduce((n, p) => n + p(), 0));
      },
    });
    const watched = this.watched;
    new Gauge({
      name: 'tessera_pending_items', help: 'items admitted and not yet finished', labelNames: ['model'], registers: [this.registry],
      collect() {
        for (const [model, embedder] of watched) this.set({ model }, embedder.load.pendingItems);
      },
    });
    new Gauge({
      name: 'tessera_queued_jobs', help: 'items waiting for a batch', labelNames: ['model', 'modality'], registers: [this.registry],
      collect() {
        for (const [model, embedder] of watched) {
          const queued = embedder.load.queued;
          this.set({ model, modality: 'text' }, queued.text);
          this.set({ model, modality: 'image' }, queued.image);
        }
      },
    });
  }

  /** Follows the batches and queue of the embedder serving `model` (its served name), and its resident size when measured. */
  watch(embedder: Embedder, model: string, residentBytes?: number): void {
    this.watched.set(model, embedder);
    if (residentBytes !== undefined) this.resident.set({ model }, residentBytes);
    embedder.onBatch((report: BatchReport) => {
      const labels = { model, modality: report.modality };
      this.batchSize.observe(labels, report.size);
      this.batchSeconds.observe(labels, report.inferenceMs / 1000);
      this.queueSeconds.observe(labels, report.queueMs / 1000);
      this.items.inc(labels, report.size);
    });
  }

  /**
   * Follows a watched folder (tessera serve --watch) writing into `collection`: `pending` is
   * read at each scrape; the hooks count what its runs did.
   */
  watchFolder(collection: string, pending: () => number): { seen(n: number): void; run(r: { added: number; updated: number; removed: number; failed: number }): void } {
    this.folders.set(collection, [...(this.folders.get(collection) ?? []), pending]);
    const labels = { collection };
    for (const c of [this.watchSeen, this.watchIndexed, this.watchRemoved, this.watchFailed]) c.inc(labels, 0);
    return {
      seen: (n) => this.watchSeen.inc(labels, n),
      run: (r) => {
        this.watchIndexed.inc(labels, r.added + r.updated);
        this.watchRemoved.inc(labels, r.removed);
        this.watchFailed.inc(labels, r.failed);
      },
    };
  }

  /** Whether the per-key limits are shared through Redis now (tessera_limits_shared). */
  limitsShared(shared: boolean): void {
    this.sharedLimits.set(shared ? 1 : 0);
  }

  request(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.duration.observe({ route }, seconds);
  }

  usage(textTokens: number, imageTokens: number): void {
    this.tokens.inc({ kind: 'text' }, textTokens);
    this.tokens.inc({ kind: 'image' }, imageTokens);
  }
}
