import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Embedder } from '../engine/embedder.ts';
import type { BatchReport } from '../engine/scheduler.ts';

/** The server's Prometheus metrics, in a registry of its own (several servers may share a process in tests). */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'tessera_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  private readonly duration = new Histogram({ name: 'tessera_request_duration_seconds', help: 'HTTP request duration', labelNames: ['route'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  private readonly batchSize = new Histogram({ name: 'tessera_batch_size', help: 'items per model run', labelNames: ['modality'], buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry] });
  private readonly batchSeconds = new Histogram({ name: 'tessera_batch_inference_seconds', help: 'duration of one model run', labelNames: ['modality'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120], registers: [this.registry] });
  private readonly queueSeconds = new Histogram({ name: 'tessera_queue_wait_seconds', help: 'longest wait of an item in a batch before it ran', labelNames: ['modality'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  private readonly items = new Counter({ name: 'tessera_items_total', help: 'items embedded', labelNames: ['modality'], registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'tessera_usage_tokens_total', help: 'tokens billed', labelNames: ['kind'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tessera_' });
  }

  /** Follows an embedder's batches and queue. */
  watch(embedder: Embedder): void {
    embedder.onBatch((report: BatchReport) => {
      this.batchSize.observe({ modality: report.modality }, report.size);
      this.batchSeconds.observe({ modality: report.modality }, report.inferenceMs / 1000);
      this.queueSeconds.observe({ modality: report.modality }, report.queueMs / 1000);
      this.items.inc({ modality: report.modality }, report.size);
    });
    new Gauge({ name: 'tessera_pending_items', help: 'items admitted and not yet finished', registers: [this.registry], collect() { this.set(embedder.load.pendingItems); } });
    new Gauge({
      name: 'tessera_queued_jobs', help: 'items waiting for a batch', labelNames: ['modality'], registers: [this.registry],
      collect() {
        const queued = embedder.load.queued;
        this.set({ modality: 'text' }, queued.text);
        this.set({ modality: 'image' }, queued.image);
      },
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
