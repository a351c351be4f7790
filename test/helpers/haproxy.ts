/**
 * Replicas behind a load balancer, as a user deploys them: `tessera serve` processes on one
 * store, and HAProxy running deploy/haproxy.cfg as shipped (its addresses from the
 * environment) in front of them. A missing haproxy binary is an error, never a skipped test.
 *
 *   const replicas = [await startReplica(storeUrl), await startReplica(storeUrl)];
 *   const lb = await startHaproxy(replicas);      // resolves once both replicas answer through it
 *   ... fetch(`${lb.url}/v1/embeddings`, ...) ...; the answer names its replica in X-Tessera-Replica
 *   await lb.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { startServe, type ServeProcess } from './cli.ts';
import { tempDir } from './models.ts';

export const HAPROXY = process.env.HAPROXY ?? 'haproxy';
/** The configuration users run. */
export const SHIPPED_CONFIG = 'deploy/haproxy.cfg';

export type Replica = ServeProcess & { url: string };

/** `tessera serve --model demo` on a free port with this store (a postgres:// URL), and its own data folder. */
export async function startReplica(store: string, args: string[] = []): Promise<Replica> {
  const serve = startServe(['--model', 'demo', '--port', '0', '--store', store, ...args], { env: { XDG_DATA_HOME: await tempDir('tessera-replica-data-') } });
  return { ...serve, url: await serve.address };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

export interface LoadBalancer {
  url: string;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * HAProxy with `config` (default: the shipped one) in front of `replicas`, named replica1,
 * replica2, ... in the order given. Resolves once every replica has answered through it, so
 * each has passed its health check and is in rotation.
 */
export async function startHaproxy(replicas: readonly Replica[], options: { config?: string; deadlineMs?: number } = {}): Promise<LoadBalancer> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_LISTEN: `127.0.0.1:${port}` };
  replicas.forEach((r, i) => (env[`TESSERA_REPLICA_${i + 1}`] = new URL(r.url).host));
  const child = spawn(HAPROXY, ['-db', '-f', options.config ?? SHIPPED_CONFIG], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.once('error', (err) => (stderr += `\n${err.message}`));
  const url = `http://127.0.0.1:${port}`;
  const lb: LoadBalancer = {
    url,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  // leastconn spreads idle requests round-robin over the servers in rotation: once every
  // replica's name has come back, each one is in rotation and answers through HAProxy.
  const want = replicas.map((_, i) => `replica${i + 1}`);
  const seen = new Set<string>();
  const deadline = Date.now() + (options.deadlineMs ?? 30_000);
  while (!want.every((name) => seen.has(name))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await lb.stop();
      throw new Error(`haproxy did not put ${want.filter((n) => !seen.has(n)).join(', ')} in rotation (exit ${child.exitCode}): ${stderr}`);
    }
    const answer = await fetch(`${url}/ready`).then((r) => (r.ok ? r.headers.get('x-tessera-replica') : null), () => null);
    if (answer) seen.add(answer);
    else await delay(100);
  }
  return lb;
}
