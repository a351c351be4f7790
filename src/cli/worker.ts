import { parseArgs } from 'node:util';
import { invalidArgument } from '../errors.ts';
import { parseQueueUrl } from '../queue/connection.ts';
import { startWorker } from '../queue/worker.ts';
import { openStore } from '../store/open.ts';

const HELP = `usage: tessera worker --queue URL --store postgres://... [options]

Takes indexing jobs that \`tessera index --queue\` put on the queue, embeds their documents with
each collection's own model and writes every job in one atomic upsert. Run any number, on any
machines that reach the queue, the store and the documents (URLs, inline data, or a folder on
shared storage). A worker killed mid-job loses nothing: once its lock runs out another worker
takes the job again, and since writes replace by id each document is stored once.
SIGINT/SIGTERM: finish the jobs in hand, then exit (again to exit at once).

  --queue URL         the Redis of the queue: redis://[:password@]host[:port][/db]
                      (default $TESSERA_QUEUE)
  --store S           the store the collections are in: a postgres:// URL for workers on
                      several machines (default $TESSERA_STORE; a folder works for one worker)
  --concurrency N     jobs at once (default 1)
  --threads N         ONNX Runtime intra-op threads per session (default: all cores)
  --lock-ms N         how long a job's lock lasts unrenewed; a dead worker's job is taken
                      again after about this plus --stalled-ms (default 30000)
  --stalled-ms N      how often to look for jobs of dead workers (default 30000)
  --max-stalled N     times a job may lose its worker before it is failed (default 3)
  --name NAME         the name --status shows (default host:pid)`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      queue: { type: 'string' },
      store: { type: 'string' },
      concurrency: { type: 'string' },
      threads: { type: 'string' },
      'lock-ms': { type: 'string' },
      'stalled-ms': { type: 'string' },
      'max-stalled': { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return console.log(HELP);
  const queue = parseQueueUrl(values.queue);
  const concurrency = positiveInteger(values.concurrency, '--concurrency');
  const threads = positiveInteger(values.threads, '--threads');
  const lockMs = positiveInteger(values['lock-ms'], '--lock-ms');
  const stalledMs = positiveInteger(values['stalled-ms'], '--stalled-ms');
  const maxStalled = positiveInteger(values['max-stalled'], '--max-stalled');
  const store = await openStore(values.store);
  let worker;
  try {
    worker = await startWorker({
      queue,
      store,
      concurrency,
      threads,
      lockMs,
      stalledMs,
      maxStalled,
      name: values.name,
      onJob: (e) => {
        if (e.state === 'completed' && e.result) {
          const r = e.result;
          console.error(`tessera worker: job ${e.job} done: added ${r.added}, updated ${r.updated}, skipped ${r.skipped}, failed ${r.failed}`);
        } else if (e.state === 'stalled') console.error(`tessera worker: job ${e.job} lost its worker (lock expired); queued again`);
        else console.error(`tessera worker: job ${e.job} failed: ${e.error}`);
      },
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  console.error(`tessera worker: ${worker.name} taking jobs from ${queue.shown}, writing to ${store.location}`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(130);
      stopping = true;
      console.error(`tessera worker: ${signal}: finishing the jobs in hand (again to exit at once)`);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await worker.close();
  await store.close();
}

function positiveInteger(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(name, 'a positive integer', value);
  return n;
}
