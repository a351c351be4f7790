import { parseArgs } from 'node:util';
import { TesseraError } from '../errors.ts';
import { findDuplicates, parseThreshold, DEFAULT_DUPLICATE_THRESHOLD, type DuplicateGroup, type DuplicateProgress } from '../search/duplicates.ts';
import { parseSearchParameters } from '../search/params.ts';
import { openStore } from '../store/open.ts';

const HELP = `usage: tessera duplicates --collection NAME [--threshold T] [--modality M] [--store DIR] [--json]

Groups of near-duplicate documents: each member is at least T cosine-similar to another
member (their stored embeddings are compared; no model is loaded). One neighbour search per
document, in this process (a server runs the same scan as a job: POST .../duplicates).
Each group is exact (copies: the same content), near-identical (re-encoded or resized) or
similar. Videos and PDFs are compared as whole files: never a frame (page) with another of
its own file or with a photo, and two files only when at least half the frames (pages) of
the shorter match the other, not because one frame does.

  --collection N  the collection (required)
  --threshold T   cosine similarity, above 0 and at most 1 (default ${DEFAULT_DUPLICATE_THRESHOLD})
  --modality M    only text or only image documents
  --store DIR|URL the store: a folder or postgres://... (default: TESSERA_STORE, else
                  $XDG_DATA_HOME/tessera)
  --json          print {"data": [{"ids": [...], "score", "kind", "videos"? | "pdfs"?}]}, largest
                  groups first; kind: "exact", "near_identical" or "similar"`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      collection: { type: 'string' },
      threshold: { type: 'string' },
      modality: { type: 'string' },
      store: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return console.log(HELP);
  if (!values.collection) throw new TesseraError('INVALID_ARGUMENT', '--collection is required: the collection to check');
  const threshold = parseThreshold(values.threshold, '--threshold');
  const { modality } = parseSearchParameters({ modality: values.modality });
  const store = await openStore(values.store);
  try {
    // A scan of a large collection takes minutes: show how far it is on a terminal.
    const onProgress = process.stderr.isTTY ? ({ scanned, total }: DuplicateProgress) => process.stderr.write(`\rscanned ${scanned}/${total} documents`) : undefined;
    const groups = await findDuplicates(store, values.collection, { threshold, modality, onProgress });
    if (onProgress) process.stderr.write('\n');
    if (values.json) {
      process.stdout.write(JSON.stringify({ data: groups }) + '\n');
      return;
    }
    if (groups.length === 0) return console.log(`no near-duplicates at threshold ${threshold}`);
    groups.forEach((g, i) => console.log(describeGroup(g, i)));
  } finally {
    await store.close();
  }
}

const KIND_WORDS = { exact: 'exact copies', near_identical: 'near-identical', similar: 'similar' } as const;

/** "group 1: 2 documents, similarity >= 0.9812, near-identical" and its members, one a line (videos and PDFs by file, with the frame or page that matched). */
export function describeGroup(g: DuplicateGroup, i: number): string {
  const files = g.videos ?? g.pdfs;
  const what = g.videos ? 'videos' : g.pdfs ? 'PDFs' : 'documents';
  const lines = [`group ${i + 1}: ${g.ids.length} ${what}, similarity >= ${g.score.toFixed(4)}, ${KIND_WORDS[g.kind]}`];
  g.ids.forEach((id, j) => lines.push(files ? `  ${files[j]} (${id})` : `  ${id}`));
  return lines.join('\n');
}
