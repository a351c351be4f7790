/**
 * The server scenario: `tessera serve` in a child process (its own cores' share, as in
 * production), N concurrent clients each sending single-item requests back to back for a
 * fixed time. Requests still in flight when the time is up are aborted (the server drops
 * their work) and not counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { percentile } from './stats.ts';

const BIN = fileURLToPath(new URL('../bin/tessera', import.meta.url));
const STOP_GRACE_MS = 10_000;

export interface ServerHandle {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startServe(dir: string, args: readonly string[]): Promise<ServerHandle> {
  const child = spawn(process.execPath, [BIN, 'serve', '--model', dir, '--host', '127.0.0.1', '--port', '0', '--served-model-name', 'bench', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /serving .* on (http:\/\/[^\s]+)/.exec(log);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`tessera serve exited (${code}): ${log.slice(-2000)}`)));
  });
  return {
    url,
    child,
    // The benchmark does not measure shutdown: tessera serve gets STOP_GRACE_MS to drain after
    // SIGTERM, then SIGKILL, and the log says so. (It exits at once now: it waited a minute after
    // the 64-client mix for sockets the load's aborted requests left, until the server closed them.)
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const kill = setTimeout(() => {
          process.stderr.write(`bench: server: tessera serve had not exited ${STOP_GRACE_MS / 1000} s after SIGTERM; killed\n`);
          child.kill('SIGKILL');
        }, STOP_GRACE_MS);
        child.once('exit', () => (clearTimeout(kill), resolve()));
        child.kill('SIGTERM');
      }),
  };
}

export interface LoadResult {
  clients: number;
  workload: string;
  seconds: number;
  completed: number;
  errors: number;
  items_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

/** `clients` loops, each sending bodies from `next()` one request at a time, for `seconds`. */
export async function runLoad(url: string, workload: string, clients: number, seconds: number, next: (i: number) => string): Promise<LoadResult> {
  const stop = new AbortController();
  const latencies: number[] = [];
  let errors = 0, counter = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const timer = setTimeout(() => stop.abort(), seconds * 1000);
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const body = next(counter++);
      const t = performance.now();
      try {
        const response = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: stop.signal });
        await response.arrayBuffer();
        if (!response.ok) errors++;
        else if (performance.now() <= deadline) latencies.push(performance.now() - t);
      } catch {
        if (!stop.signal.aborted) errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  clearTimeout(timer);
  const sorted = latencies.sort((a, b) => a - b);
  return {
    clients,
    workload,
    seconds,
    completed: sorted.length,
    errors,
    items_per_s: sorted.length / seconds,
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
  };
}
