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
  /** The embedders followed, by served model name. */
  private readonly watched = new Map<string, Embedder>();
  private readonly resident = new Gauge({
    name: 'tessera_model_resident_bytes',
    help: 'estimated memory a model takes: the growth of the process RSS while it loaded (models load one after another)',
    labelNames: ['model'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tessera_' });
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

  request(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.duration.observe({ route }, seconds);
  }

  usage(textTokens: number, imageTokens: number): void {
    this.tokens.inc({ kind: 'text' }, textTokens);
    this.tokens.inc({ kind: 'image' }, imageTokens);
  }
}
