import { invalidArgument } from './errors.ts';

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; the results come in the
 * items' order. The first rejection rejects at once and aborts the signal the other calls
 * were given (their later rejections are ignored); no new call starts after it. Aborting
 * `signal` does the same with its reason.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw invalidArgument('limit', 'an integer of at least 1', limit);
  if (signal?.aborted) throw signal.reason;
  const results = new Array<R>(items.length);
  if (items.length === 0) return results;

  const controller = new AbortController();
  return new Promise<R[]>((resolve, reject) => {
    let next = 0;
    let done = 0;
    let failed = false;
    const fail = (reason: unknown) => {
      if (failed) return;
      failed = true;
      signal?.removeEventListener('abort', onAbort);
      controller.abort(reason);
      reject(reason);
    };
    const onAbort = () => fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });

    const launch = () => {
      if (failed || next >= items.length) return;
      const index = next++;
      Promise.resolve()
        .then(() => fn(items[index]!, index, controller.signal))
        .then(
          (value) => {
            if (failed) return;
            results[index] = value;
            if (++done === items.length) {
              signal?.removeEventListener('abort', onAbort);
              resolve(results);
            } else {
              launch();
            }
          },
          fail,
        );
    };
    for (let i = 0; i < Math.min(limit, items.length); i++) launch();
  });
}

/**
 * Runs the work given for one key one at a time, in the order given; work of other keys runs
 * alongside. A failure does not stop the work queued after it. Keys with nothing queued are
 * forgotten.
 */
export class KeyedSerializer {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => {});
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }

  /** Resolves once everything queued so far has settled. */
  async idle(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }
}
