/**
 * A throwaway PostgreSQL 15 server (with pgvector available) for tests: its own data folder in a
 * temporary directory, its own free TCP port on 127.0.0.1 and its unix socket inside that
 * directory, so it never meets a system cluster (Debian's default one on 5432).
 *
 *   const pg = await startPostgres();
 *   after(() => pg.close());
 *   const url = await pg.createDatabase();   // a fresh, empty database per call
 *   await pg.stop(); ...; await pg.start();   // an outage, same port and data
 *
 * initdb and pg_ctl come from /usr/lib/postgresql/15/bin (PG_BIN overrides). PostgreSQL refuses
 * to run as root: when the tests run as root (CI does), the directory is handed to the
 * `postgres` user and every server command runs as that user through runuser. A missing binary
 * or user is an error, never a skipped test.
 *
 * Connections over TCP need the password (scram-sha-256), so that URLs carry one the way
 * production URLs do and tests can check it never leaks into messages.
 */
import { execFile } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** The superuser's password in every URL the helper hands out. */
export const PG_PASSWORD = 'tessera-test-secret-pw';
const SUPERUSER = 'postgres';

export interface PgServer {
  readonly port: number;
  /** The temporary directory (data folder, socket, log). */
  readonly dir: string;
  /** A URL for database `db` (default "postgres") with user and password. */
  url(db?: string): string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Runs SQL as the superuser in database `db` (setup and inspection in tests). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(db: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Fast shutdown (sessions are terminated, as in a real restart); the port closes. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port with the same data. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /**
   * SIGSTOP to the postmaster and every backend: the server keeps its port open but answers
   * nothing (a hung or partitioned database). thaw() sends SIGCONT.
   */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Stops the server (if running) and removes the directory. Safe to call twice. */
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function need(path: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing: install postgresql-15 (and build pgvector into it; see .ci/run), or set PG_BIN`);
  }
}

/** The uid/gid of the postgres user, read from /etc/passwd. */
function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${SUPERUSER}:`));
  if (!line) throw new Error('running as root, but there is no "postgres" user to run PostgreSQL as: install postgresql-15');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgres(): Promise<PgServer> {
  const initdb = join(PG_BIN, 'initdb');
  const pgCtl = join(PG_BIN, 'pg_ctl');
  need(initdb);
  need(pgCtl);
  const asRoot = userInfo().uid === 0;
  const owner = asRoot ? postgresUser() : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${PG_PASSWORD}\n`);
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(pwfile, owner.uid, owner.gid);
  }
  chmodSync(dir, 0o700);

  /** Runs a server binary as the user that owns the data folder. */
  const exec = async (file: string, args: string[]): Promise<void> => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', SUPERUSER, '--', file, ...args]] : [file, args];
    try {
      await run(cmd, argv, { cwd: dir, timeout: 60_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string; stdout?: string };
      let tail = '';
      try {
        tail = readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
      } catch {}
      throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}\n${tail}`);
    }
  };

  await exec(initdb, ['-D', data, '-U', SUPERUSER, '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  rmSync(pwfile);

  let port = 0;
  let running = false;
  const startOn = async (p: number) => {
    // Durability settings off: these databases live for one test run.
    const options = `-p ${p} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    await exec(pgCtl, ['-D', data, '-l', log, '-o', options, '-w', '-t', '30', 'start']);
    running = true;
  };
  // A port found free can be taken before the server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await startOn(port);
      break;
    } catch (err) {
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const url = (db = 'postgres') => `postgres://${SUPERUSER}:${encodeURIComponent(PG_PASSWORD)}@127.0.0.1:${port}/${db}`;
  const query = async <R extends pg.QueryResultRow>(db: string, sql: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: url(db) });
    await client.connect();
    try {
      return await client.query<R>(sql, params);
    } finally {
      await client.end();
    }
  };
  let databases = 0;
  const pids = (): number[] => {
    const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .filter((name) => {
        try {
          // Field 4 of /proc/PID/stat is the parent pid (after the parenthesised command name).
          const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
        } catch {
          return false;
        }
      })
      .map(Number);
    return [postmaster, ...children];
  };
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of pids()) {
      try {
        process.kill(pid, sig);
      } catch {}
    }
  };

  const server: PgServer = {
    port,
    dir,
    url,
    query,
    async createDatabase(name?: string) {
      const db = name ?? `tessera_test_${++databases}`;
      await query('postgres', `CREATE DATABASE "${db.replaceAll('"', '""')}"`);
      return url(db);
    },
    async stop() {
      if (!running) return;
      await exec(pgCtl, ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
      running = false;
    },
    async start() {
      if (running) return;
      await startOn(port);
    },
    async restart() {
      await server.stop();
      await server.start();
    },
    async freeze() {
      signal('SIGSTOP');
    },
    async thaw() {
      signal('SIGCONT');
    },
    async close() {
      if (running) {
        signal('SIGCONT');
        await server.stop().catch(() => {});
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
