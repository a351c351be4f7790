import cliProgress from 'cli-progress';

/** Progress of one file being downloaded. */
export interface FileProgress {
  advance(bytes: number): void;
  /** The file is complete (or abandoned): close the bar. */
  end(): void;
}

/** Where download progress goes: a bar on a terminal, one line per file elsewhere, or nowhere. */
export interface DownloadReporter {
  /** A file of `total` bytes starts downloading, `already` of them present from an earlier try. */
  file(path: string, total: number, already: number): FileProgress;
  /** A one-line remark (fallback to the cache, a retry). */
  note(message: string): void;
}

const SILENT: DownloadReporter = {
  file: () => ({ advance() {}, end() {} }),
  note() {},
};

/** Bytes in decimal units, as the hub shows sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let unit = 'B';
  for (const u of units) {
    if (v < 1000) break;
    v /= 1000;
    unit = u;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${unit}`;
}

/**
 * A reporter writing to `stream` (stderr): a cli-progress bar with bytes, speed and file name
 * when the stream is a terminal, one line per file when it is not, nothing when `enabled` is
 * false or HF_HUB_DISABLE_PROGRESS_BARS is set (as in Python's huggingface_hub).
 */
export function downloadReporter(
  enabled: boolean,
  stream: NodeJS.WriteStream = process.stderr,
): DownloadReporter {
  if (!enabled) return SILENT;
  const line = (s: string) => void stream.write(`tessera: ${s}\n`);
  const bars = stream.isTTY === true && !truthy(process.env.HF_HUB_DISABLE_PROGRESS_BARS);
  if (!bars) {
    return {
      file(path, total, already) {
        line(`downloading ${path} (${formatBytes(total)})${already > 0 ? `, resuming at ${formatBytes(already)}` : ''}`);
        return { advance() {}, end() {} };
      },
      note: line,
    };
  }
  return {
    file(path, total, already) {
      const bar = new cliProgress.SingleBar({
        stream,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 30,
        format: (options, params) => {
          const elapsed = (Date.now() - params.startTime) / 1000;
          const speed = elapsed > 0.5 ? `${formatBytes((params.value - already) / elapsed)}/s` : '';
          const bar = cliProgress.Format.BarFormat(params.progress, options);
          return `${path} |${bar}| ${formatBytes(params.value)} / ${formatBytes(params.total)} ${speed}`;
        },
      });
      bar.start(total, already);
      let value = already;
      let open = true;
      return {
        advance(bytes) {
          value += bytes;
          bar.update(value);
        },
        end() {
          if (open) bar.stop();
          open = false;
        },
      };
    },
    note: line,
  };
}

export function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());
}
