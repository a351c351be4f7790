/**
 * Where the store lives and which backend serves it: `--store DIR`, else `TESSERA_STORE`, else
 * `$XDG_DATA_HOME/tessera`, else `~/.local/share/tessera`. A folder is the embedded LanceDB
 * store; a `postgres://` URL will be the PostgreSQL + pgvector backend.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { TesseraError } from '../errors.ts';
import { openLanceStore, type LanceStoreOptions } from './lance.ts';
import type { VectorStore } from './store.ts';

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

/** A URL without its password, for messages. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}

/** Opens the store at `location` (see storeLocation). STORE_INVALID if it cannot be opened. */
export async function openStore(location?: string, options?: LanceStoreOptions): Promise<VectorStore> {
  const where = storeLocation(location);
  if (/^postgres(ql)?:\/\//i.test(where)) {
    throw new TesseraError('STORE_INVALID', `${withoutPassword(where)}: the PostgreSQL backend is not built yet; give --store a folder (the embedded LanceDB store) instead`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(where)) {
    throw new TesseraError('STORE_INVALID', `${withoutPassword(where)}: expected a folder for the store (or, later, a postgres:// URL)`);
  }
  return openLanceStore(where, options);
}
