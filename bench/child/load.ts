/**
 * Run in a fresh process: loads a model, reports time to ready and resident memory.
 * argv: dir dtype threads [longDocTokens]. With longDocTokens, then embeds one document of
 * that many tokens and reports its time and the process's peak resident memory.
 * Prints one JSON line.
 */
import { Embedder } from '../../src/engine/embedder.ts';
import type { Dtype } from '../../src/model/dtype.ts';
import { prose } from '../corpus.ts';

const [dir, dtype, threads, longDoc] = process.argv.slice(2);
const started = performance.now();
const embedder = await Embedder.load(dir!, { dtype: dtype as Dtype, intraOpThreads: Number(threads) });
const loadMs = performance.now() - started;
const rssAfterLoad = process.memoryUsage().rss;
// Ready as the server means it: one text and one image have run (first runs allocate).
await embedder.embedTexts(['warm up']);
await embedder.embedPixels(new Float32Array(3 * embedder.model.image.size ** 2), 1);
const readyMs = performance.now() - started;
const rssAfterWarmup = process.memoryUsage().rss;
const out: Record<string, number> = { load_ms: loadMs, ready_ms: readyMs, rss_after_load: rssAfterLoad, rss_after_warmup: rssAfterWarmup };
if (longDoc) {
  const target = Number(longDoc);
  // prose gives about one token a word; trim to the exact count with the tokenizer.
  let text = prose(777, target);
  while (embedder.tokenize(text).tokenCount > target) text = text.slice(0, Math.floor(text.length * 0.98));
  const t = performance.now();
  const [result] = await embedder.embedTexts([text]);
  out.long_doc_tokens = result!.tokens!;
  out.long_doc_ms = performance.now() - t;
  out.peak_rss = process.resourceUsage().maxRSS * 1024;
}
await embedder.close();
console.log(JSON.stringify(out));
