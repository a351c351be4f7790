import { readFile } from 'node:fs/promises';
import { TesseraError } from '../errors.ts';

/** Reads a JSON file of a model folder; a missing or malformed file is named in the error. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TesseraError('MODEL_FILE_MISSING', `${path} is missing`, { cause: err });
    throw new TesseraError('MODEL_FILE_INVALID', `${path} cannot be read (${code ?? (err as Error).message})`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TesseraError('MODEL_FILE_INVALID', `${path} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
}
