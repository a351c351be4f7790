/**
 * `tessera bench` drives bench/ and transformers.js (a development dependency), which the
 * package leaves out: from a clone it runs, from the package it says where to run it. The
 * path is not a literal so that the package build does not compile bench/ in.
 */
async function benchCommand(): Promise<{ main(args: string[]): Promise<void> }> {
  const path = './bench.ts';
  try {
    return (await import(path)) as { main(args: string[]): Promise<void> };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error('the benchmarks run from a clone of the repository: the package leaves them and transformers.js out');
  }
}

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const COMMANDS: Record<string, () => Promise<{ main(args: string[]): Promise<void> }>> = {
  serve: () => import('./serve.ts'),
  embed: () => import('./embed.ts'),
  classify: () => import('./classify.ts'),
  train: () => import('./train.ts'),
  forge: () => import('./forge.ts'),
  bench: benchCommand,
  eval: () => import('./eval.ts'),
  index: () => import('./index.ts'),
  search: () => import('./search.ts'),
  duplicates: () => import('./duplicates.ts'),
  worker: () => import('./worker.ts'),
  mcp: () => import('./mcp.ts'),
};

const USAGE = `usage: tessera <command> [options]

commands:
  serve     serve the Jina Embeddings API (and OpenAI's embeddings shape) over HTTP
  embed     embed texts and images, print Jina-API-shaped JSON
  classify  zero-shot classification of texts and images against labels
  train     create or train a few-shot classifier from labelled examples (JSONL), in the store
  forge     build a model folder of the jina-clip (v1, v2) or CLIP architecture (tiny | full | colour | clip-tiny | v2-tiny | v2-full | v2-colour)
  bench     benchmarks against transformers.js and the hardware's ceiling (table + JSON)
  eval      evaluate models on retrieval / classification benchmarks (the published table)
  index     index folders, JSONL documents or image URL lists into a collection, incrementally
  search    search a collection by text, image or example document (table or JSON)
  duplicates  groups of near-duplicate documents in a collection
  worker    take indexing jobs from a queue (tessera index --queue) and write them to the store
  mcp       the Model Context Protocol on stdio: search, embed and classify tools for assistants

Run \`tessera <command> --help\` for a command's options.`;

const [command, ...args] = process.argv.slice(2);
if (!command || command === '--help' || command === '-h') {
  console.log(USAGE);
} else if (command === '--version' || command === '-V') {
  console.log(await version());
} else if (!(command in COMMANDS)) {
  console.error(`tessera: unknown command "${command}"\n\n${USAGE}`);
  process.exitCode = 2;
} else {
  try {
    const mod = await COMMANDS[command]!();
    await mod.main(args);
  } catch (err) {
    console.error(`tessera ${command}: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
