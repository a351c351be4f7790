import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { forgeModel } from '../../src/forge/index.ts';

const built = new Map<string, Promise<string>>();
const dirs: string[] = [];

export async function tempDir(prefix = 'tessera-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

type ForgedPreset = 'tiny' | 'colour' | 'v2-tiny' | 'v2-colour';

/** A forged model folder, built once per test file (attentionMask applies to the v1 presets only). */
export function forged(preset: ForgedPreset, attentionMask = true): Promise<string> {
  const v2 = preset.startsWith('v2-');
  const key = v2 ? preset : `${preset}-${attentionMask}`;
  if (!built.has(key)) {
    built.set(key, (async () => {
      const dir = await tempDir(`tessera-${key}-`);
      await forgeModel(v2 ? { preset, outDir: dir } : { preset, outDir: dir, attentionMask });
      return dir;
    })());
  }
  return built.get(key)!;
}

/** A writable copy of a forged model folder, for tests that break or change files. */
export async function forgedCopy(preset: ForgedPreset, attentionMask = true): Promise<string> {
  const dir = await tempDir('tessera-copy-');
  await cp(await forged(preset, attentionMask), dir, { recursive: true });
  return dir;
}

export { cosine } from '../../src/engine/vectors.ts';

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
