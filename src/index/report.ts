/**
 * How an indexing run shows itself on stderr: a progress bar on a terminal (items/s, ETA,
 * failures so far) with failures printed above it, plain log lines otherwise (a log file or
 * a CI job gets one line per failure and a status line every few seconds).
 */
import cliProgress from 'cli-progress';
import type { IndexFailure, IndexProgress, IndexSummary } from './pipeline.ts';

export interface Reporter {
  progress(p: IndexProgress): void;
  failure(f: IndexFailure): void;
  note(line: string): void;
  stop(): void;
}

export function createReporter(stream: NodeJS.WriteStream = process.stderr, options: { tty?: boolean; intervalMs?: number } = {}): Reporter {
  return (options.tty ?? stream.isTTY === true) ? barReporter(stream) : lineReporter(stream, options.intervalMs ?? 5000);
}

function barReporter(stream: NodeJS.WriteStream): Reporter {
  const multi = new cliProgress.MultiBar(
    {
      // Short enough for an 80-column terminal: cli-progress cuts what does not fit.
      format: 'indexing {bar} {value}/{total} | {rate} items/s | ETA {eta_formatted} | failed {failed}',
      barsize: 20,
      stream,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 200,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  // Rates count from the first item, not from the model's loading.
  let started = 0;
  // Lines go above the bar once it is drawn; before, straight to the stream.
  const above = (line: string) => (bar ? multi.log(`${line}\n`) : stream.write(`${line}\n`));
  return {
    progress(p) {
      started ||= performance.now();
      const rate = (p.done / Math.max(0.001, (performance.now() - started) / 1000)).toFixed(1);
      if (!bar) bar = multi.create(p.total, p.done, { rate, failed: p.failed });
      bar.setTotal(p.total);
      bar.update(p.done, { rate, failed: p.failed });
    },
    failure(f) {
      above(`failed: ${f.message} [${f.code}]`);
    },
    note(line) {
      above(line);
    },
    stop() {
      if (!bar) return;
      multi.update(); // prints lines logged since the last redraw
      multi.stop();
    },
  };
}

function lineReporter(stream: NodeJS.WriteStream, intervalMs: number): Reporter {
  let started = 0;
  let last = 0;
  const line = (p: IndexProgress) => {
    const seconds = (performance.now() - started) / 1000;
    const rate = p.done / Math.max(0.001, seconds);
    const left = p.total - p.done;
    const eta = rate > 0 && left > 0 ? `, ETA ${Math.ceil(left / rate)} s` : '';
    stream.write(`tessera index: ${p.done}/${p.total} (${rate.toFixed(1)} items/s${eta}); ${counts(p)}\n`);
  };
  return {
    progress(p) {
      const now = performance.now();
      if (started === 0) started = last = now;
      if (now - last >= intervalMs) {
        last = now;
        line(p);
      }
    },
    failure(f) {
      stream.write(`tessera index: failed: ${f.message} [${f.code}]\n`);
    },
    note(text) {
      stream.write(`tessera index: ${text}\n`);
    },
    stop() {},
  };
}

export function counts(s: IndexSummary): string {
  return `added ${s.added}, updated ${s.updated}, skipped ${s.skipped}, removed ${s.removed}, failed ${s.failed}`;
}
