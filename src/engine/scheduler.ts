import { TesseraError } from '../errors.ts';
import { planTextBatches, type TextBatchLimits } from './batching.ts';

export type Modality = 'text' | 'image';

export interface BatchReport {
  modality: Modality;
  size: number;
  /** Padded tokens (texts) or images in the batch. */
  units: number;
  queueMs: number;
  inferenceMs: number;
}

export interface JobTiming {
  /** From submission until its batch started. */
  queueMs: number;
  /** Duration of the batch it ran in. */
  inferenceMs: number;
}

/** Lets one batch at a time through: a Semaphore(1) shared by several schedulers (src/engine/semaphore.ts). */
export interface BatchGate {
  run<T>(task: () => Promise<T>): Promise<T>;
}

export interface SchedulerOptions {
  /** When the model is idle, wait this long for more work to join a batch (default 2 ms). */
  maxWaitMs: number;
  /**
   * Shared with the schedulers of other models served by the same process: at most one batch
   * of any of them runs at a time, since they share the cores. Batches still never mix models.
   */
  gate?: BatchGate;
  maxImageBatch: number;
  text: Omit<TextBatchLimits, 'heads' | 'equalLengthsOnly'>;
  heads: number;
  equalLengthsOnly: boolean;
  runText(rows: number[][]): Promise<Float32Array[]>;
  runImages(pixels: Float32Array[]): Promise<Float32Array[]>;
}

interface Job {
  modality: Modality;
  ids?: number[];
  pixels?: Float32Array;
  signal?: AbortSignal;
  submitted: number;
  resolve(result: { vector: Float32Array; timing: JobTiming }): void;
  reject(err: unknown): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Batches work from all callers per modality and runs one batch at a time across both
 * towers, so the text and vision sessions never compete for the cores. Texts are grouped
 * by length within an attention-memory budget around the oldest waiting text; images by
 * count, oldest first. Jobs whose signal aborted are dropped before they reach the model.
 */
export class BatchScheduler {
  private readonly options: SchedulerOptions;
  private readonly pending: Record<Modality, Job[]> = { text: [], image: [] };
  private running = false;
  /** Called after every batch (metrics). */
  readonly listeners = new Set<(report: BatchReport) => void>();

  constructor(options: SchedulerOptions) {
    this.options = options;
  }

  /** Jobs waiting for a batch, per modality. */
  get depth(): Record<Modality, number> {
    return { text: this.pending.text.length, image: this.pending.image.length };
  }

  submitText(ids: number[], signal?: AbortSignal) {
    return this.submit({ modality: 'text', ids, signal });
  }

  submitImage(pixels: Float32Array, signal?: AbortSignal) {
    return this.submit({ modality: 'image', pixels, signal });
  }

  private submit(job: Pick<Job, 'modality' | 'ids' | 'pixels' | 'signal'>): Promise<{ vector: Float32Array; timing: JobTiming }> {
    if (job.signal?.aborted) return Promise.reject(cancelled(job.signal));
    return new Promise((resolve, reject) => {
      this.pending[job.modality].push({ ...job, submitted: performance.now(), resolve, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // Idle: give concurrent callers a moment to join the first batch.
      if (this.options.maxWaitMs > 0 && !this.full()) await sleep(this.options.maxWaitMs);
      for (;;) {
        this.dropCancelled();
        if (!this.nextModality()) break;
        // The batch is picked once the gate lets it through: work that arrived while another
        // model's batch ran joins it, and work cancelled meanwhile is left out.
        await this.gated(async () => {
          this.dropCancelled();
          const modality = this.nextModality();
          if (!modality) return;
          const batch = modality === 'text' ? this.takeTextBatch() : this.pending.image.splice(0, this.options.maxImageBatch);
          await this.run(modality, batch);
        });
      }
    } finally {
      this.running = false;
    }
  }

  private gated(task: () => Promise<void>): Promise<void> {
    return this.options.gate ? this.options.gate.run(task) : task();
  }

  private full(): boolean {
    return this.pending.text.length >= this.options.text.maxBatch || this.pending.image.length >= this.options.maxImageBatch;
  }

  private dropCancelled(): void {
    for (const modality of ['text', 'image'] as const) {
      this.pending[modality] = this.pending[modality].filter((job) => {
        if (!job.signal?.aborted) return true;
        job.reject(cancelled(job.signal));
        return false;
      });
    }
  }

  /** The modality whose oldest job has waited longest. */
  private nextModality(): Modality | undefined {
    const text = this.pending.text[0];
    const image = this.pending.image[0];
    if (!text) return image ? 'image' : undefined;
    if (!image) return 'text';
    return text.submitted <= image.submitted ? 'text' : 'image';
  }

  private takeTextBatch(): Job[] {
    const window = this.pending.text.slice(0, this.options.text.maxBatch * 4);
    const batches = planTextBatches(
      window.map((job) => job.ids!.length),
      { ...this.options.text, heads: this.options.heads, equalLengthsOnly: this.options.equalLengthsOnly },
    );
    const chosen = new Set(batches.find((b) => b.includes(0))!.map((i) => window[i]!));
    this.pending.text = this.pending.text.filter((job) => !chosen.has(job));
    return [...chosen];
  }

  private async run(modality: Modality, batch: Job[]): Promise<void> {
    const started = performance.now();
    try {
      const vectors = modality === 'text'
        ? await this.options.runText(batch.map((job) => job.ids!))
        : await this.options.runImages(batch.map((job) => job.pixels!));
      const inferenceMs = performance.now() - started;
      batch.forEach((job, k) => job.resolve({ vector: vectors[k]!, timing: { queueMs: started - job.submitted, inferenceMs } }));
      const report: BatchReport = {
        modality,
        size: batch.length,
        units: modality === 'text' ? batch.length * Math.max(...batch.map((j) => j.ids!.length)) : batch.length,
        queueMs: Math.max(...batch.map((j) => started - j.submitted)),
        inferenceMs,
      };
      for (const listener of this.listeners) listener(report);
    } catch (err) {
      for (const job of batch) job.reject(err);
    }
  }
}

export function cancelled(signal: AbortSignal): TesseraError {
  const reason = signal.reason instanceof Error && signal.reason.name === 'TimeoutError' ? 'its deadline passed' : 'the request was cancelled';
  return new TesseraError('REQUEST_CANCELLED', `dropped before inference: ${reason}`);
}
