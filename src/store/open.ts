/**
 * Where the store lives and which backend serves it: `--store DIR`, else `TESSERA_STORE`, else
 * `$XDG_DATA_HOME/tessera`, else `~/.local/share/tessera`. A folder is the embedded LanceDB
 * store; a `postgres://` (or `postgresql://`) URL is the PostgreSQL + pgvector backend.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { TesseraError } from '../errors.ts';
import { openLanceStore, type LanceStoreOptions } from './lance.ts';
import { openPostgresStore, withoutPassword, type PostgresStoreOptions } from './postgres.ts';
import type { Collections } from './collections.ts';

/** `$XDG_DATA_HOME/tessera`, or `~/.local/share/tessera` when XDG_DATA_HOME is unset. */
export function defaultStoreLocation(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  // The XDG spec says relative values are to be ignored.
  const base = xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'share');
  return join(base, 'tessera');
}

/** The location a command uses: the flag's value, else TESSERA_STORE, else the default. */
export function storeLocation(location?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = location ?? (env.TESSERA_STORE || undefined) ?? defaultStoreLocation(env);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(chosen)) return chosen;
  const expanded = chosen === '~' ? homedir() : chosen.startsWith('~/') ? join(homedir(), chosen.slice(2)) : chosen;
  return resolve(expanded);
}

/** Options of either backend: the embedded store's at the top level, PostgreSQL's under `postgres`. */
export interface StoreOptions extends LanceStoreOptions {
  postgres?: PostgresStoreOptions;
}

/**
 * Opens the store at `location` (see storeLocation): the collections layer over its backend.
 * STORE_INVALID if it cannot be opened; STORE_UNAVAILABLE when its PostgreSQL cannot be reached.
 */
export async function openStore(location?: string, options?: StoreOptions): Promise<Collections> {
  const where = storeLocation(location);
  if (/^postgres(ql)?:\/\//i.test(where)) return openPostgresStore(where, options?.postgres);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(where)) {
    throw new TesseraError('STORE_INVALID', `${withoutPassword(where)}: expected a folder for the store or a postgres:// URL`);
  }
  const { postgres: _, ...lance } = options ?? {};
  return openLanceStore(where, lance);
}
