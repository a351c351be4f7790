/** The report as a table: one row per target, with tessera's figure, the peer's, the ratio and the target. */
type Obj = Record<string, unknown>;

const get = (report: Obj, path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Obj)[k] : undefined), report);
const fmt = (v: unknown): string => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3).replace(/\.?0+$/, '')) : v === undefined ? '-' : String(v));

interface Row { what: string; ours: string; theirs: string; value: string; target: string; op: '>=' | '<=' | ''; limit: number }

const ROWS: Row[] = [
  { what: 'images/s, fp32 (vs transformers.js)', ours: 'images.tessera.images_per_s', theirs: 'images.peer.images_per_s', value: 'images.ratio', target: '>= 1.5x', op: '>=', limit: 1.5 },
  { what: 'images: fraction of ceiling in inference', ours: 'images.tessera.ceiling_fraction', theirs: 'images.peer.ceiling_fraction', value: 'images.ceiling_fraction', target: '>= 0.70', op: '>=', limit: 0.7 },
  { what: 'texts/s, fp32 (vs transformers.js)', ours: 'texts.tessera.texts_per_s', theirs: 'texts.peer.texts_per_s', value: 'texts.ratio', target: '>= 2x', op: '>=', limit: 2 },
  { what: 'tokens/s, fp32 (vs transformers.js)', ours: 'texts.tessera.tokens_per_s', theirs: 'texts.peer.tokens_per_s', value: 'texts.ratio', target: '', op: '', limit: 0 },
  { what: 'texts: fraction of ceiling in inference', ours: 'texts.tessera.ceiling_fraction', theirs: 'texts.peer.ceiling_fraction', value: 'texts.ceiling_fraction', target: '>= 0.60', op: '>=', limit: 0.6 },
  { what: 'server, text items/s (vs offline engine)', ours: 'server.tessera.text_items_per_s', theirs: 'server.peer.text_items_per_s', value: 'server.offline_fraction_text', target: '>= 0.90', op: '>=', limit: 0.9 },
  { what: 'server, image items/s (vs offline engine)', ours: 'server.tessera.image_items_per_s', theirs: 'server.peer.image_items_per_s', value: 'server.offline_fraction_image', target: '>= 0.90', op: '>=', limit: 0.9 },
  { what: 'server, text p99 ms (vs one full batch)', ours: 'server.tessera.text_p99_ms', theirs: 'server.peer.text_full_batch_ms', value: 'server.p99_over_full_batch_text', target: '< 3x', op: '<=', limit: 3 },
  { what: 'server, image p99 ms (vs one full batch)', ours: 'server.tessera.image_p99_ms', theirs: 'server.peer.image_full_batch_ms', value: 'server.p99_over_full_batch_image', target: '< 3x', op: '<=', limit: 3 },
  { what: 'q8 images/s (vs fp32)', ours: 'q8.tessera.images_per_s', theirs: 'q8.peer.images_per_s', value: 'q8.speedup_images', target: '>= 2x', op: '>=', limit: 2 },
  { what: 'q8 texts/s (vs fp32)', ours: 'q8.tessera.texts_per_s', theirs: 'q8.peer.texts_per_s', value: 'q8.speedup_texts', target: '>= 2x', op: '>=', limit: 2 },
  { what: 'q8 min cosine to fp32 (every item)', ours: 'q8.min_cosine', theirs: '', value: 'q8.min_cosine', target: '>= 0.99', op: '>=', limit: 0.99 },
  { what: 'q8 images/s, same q8 files (vs transformers.js q8)', ours: 'q8.tessera.images_per_s', theirs: 'q8.peer_q8.images_per_s', value: 'q8.peer_ratio', target: '', op: '', limit: 0 },
  { what: 'RSS after load MB, fp32 (vs model files)', ours: 'startup.fp32.rss_after_load_mb', theirs: 'startup.fp32.model_files_mb', value: 'startup.fp32.rss_ratio', target: '<= 1.5x', op: '<=', limit: 1.5 },
  { what: 'RSS after load MB, q8 (vs model files)', ours: 'startup.q8.rss_after_load_mb', theirs: 'startup.q8.model_files_mb', value: 'startup.q8.rss_ratio', target: '<= 1.5x', op: '<=', limit: 1.5 },
  { what: 'index, docs/s (vs offline engine images/s)', ours: 'index.docs_per_s', theirs: 'index.offline_images_per_s', value: 'index.offline_fraction', target: '>= 0.90', op: '>=', limit: 0.9 },
  { what: 'media: video frames/s indexed (vs offline engine)', ours: 'media.video.frames_per_s', theirs: 'media.video.offline_images_per_s', value: 'media.video.offline_fraction', target: '>= 0.80', op: '>=', limit: 0.8 },
  { what: 'media: PDF pages/s indexed (vs offline engine images/s)', ours: 'media.pdf.pages_per_s', theirs: 'media.pdf.offline_images_per_s', value: 'media.pdf.offline_fraction', target: '', op: '', limit: 0 },
  { what: 'media: peak RSS MB indexing an hour of video (growth)', ours: 'media.long_video.peak_rss_mb', theirs: 'media.long_video.peak_growth_mb', value: '', target: '', op: '', limit: 0 },
  { what: 'photos: EXIF ms/photo (vs embedding ms/image)', ours: 'photos.exif_ms_per_photo', theirs: 'photos.embed_ms_per_image', value: 'photos.exif_share', target: '< 0.02', op: '<=', limit: 0.02 },
  { what: 'search: ANN recall@10 at 100k (vs exact)', ours: 'search.recall_at_10', theirs: '', value: 'search.recall_at_10', target: '>= 0.95', op: '>=', limit: 0.95 },
  { what: 'search: query p50 / p99 ms at 10k', ours: 'search.p50_ms.10k', theirs: 'search.p99_ms.10k', value: '', target: '', op: '', limit: 0 },
  { what: 'search: query p50 / p99 ms at 100k', ours: 'search.p50_ms.100k', theirs: 'search.p99_ms.100k', value: '', target: '', op: '', limit: 0 },
  { what: 'search: API p50 / p99 ms at 100k, by id (embedded)', ours: 'search.api_p50_ms', theirs: 'search.api_p99_ms', value: 'search.api_p99_ms', target: 'p99 < 40', op: '<=', limit: 40 },
  { what: 'search: API recall@10 at 100k, by id (vs exact)', ours: 'search.api_recall_at_10', theirs: '', value: 'search.api_recall_at_10', target: '>= 0.95', op: '>=', limit: 0.95 },
  { what: 'store: API p50 / p99 ms at 100k, by id (PostgreSQL)', ours: 'store.postgres.api_p50_ms', theirs: 'store.postgres.api_p99_ms', value: 'store.postgres.api_p99_ms', target: 'p99 < 25', op: '<=', limit: 25 },
  { what: 'store: API recall@10 at 100k, by id (PostgreSQL)', ours: 'store.postgres.api_recall_at_10', theirs: '', value: 'store.postgres.api_recall_at_10', target: '>= 0.95', op: '>=', limit: 0.95 },
  { what: 'search: inserted docs/s (index kept up); bytes on disk per 100k', ours: 'search.insert_docs_per_s', theirs: 'search.bytes_per_100k', value: '', target: '', op: '', limit: 0 },
  { what: 'time to ready s, fp32 / q8', ours: 'startup.fp32.ready_s', theirs: 'startup.q8.ready_s', value: '', target: '', op: '', limit: 0 },
];

export function formatTable(report: Obj): string {
  const lines = [`| scenario | tessera | peer / baseline | ratio | target | met |`, `|---|---|---|---|---|---|`];
  for (const row of ROWS) {
    const value = row.value ? get(report, row.value) : undefined;
    if (get(report, row.ours) === undefined) continue;
    const met = typeof value === 'number' && row.op ? ((row.op === '>=' ? value >= row.limit : value <= row.limit) ? 'yes' : 'no') : '';
    lines.push(`| ${row.what} | ${fmt(get(report, row.ours))} | ${row.theirs ? fmt(get(report, row.theirs)) : ''} | ${row.value ? fmt(value) : ''} | ${row.target} | ${met} |`);
  }
  const model = get(report, 'model_option');
  if (model !== undefined) lines.push('', `model: ${String(model)} (${String(get(report, 'model'))})`);
  const ceiling = get(report, 'ceiling.gflops');
  if (ceiling !== undefined) lines.push(...(model === undefined ? [''] : []), `ceiling: ${fmt(ceiling)} GFLOP/s (best MatMul, ${fmt(get(report, 'ceiling.best_shape'))}); ${fmt(Number(get(report, 'flops.per_image')) / 1e9)} GFLOP per image, ${fmt(Number(get(report, 'flops.per_512_token_text')) / 1e9)} GFLOP per 512-token text`);
  const long = get(report, 'startup.long_doc') as Obj | undefined;
  if (long) lines.push(`long document: ${fmt(long.tokens)} tokens in ${fmt(long.seconds)} s, peak RSS ${fmt(long.peak_rss_mb)} MB${long.note ? ` (${String(long.note)})` : ''}`);
  const levels = get(report, 'server.levels') as Obj[] | undefined;
  if (levels) {
    lines.push('', '| server workload | clients | items/s | p50 ms | p99 ms | errors |', '|---|---|---|---|---|---|');
    for (const l of levels) lines.push(`| ${String(l.workload)} | ${fmt(l.clients)} | ${fmt(l.items_per_s)} | ${fmt(l.p50_ms)} | ${fmt(l.p99_ms)} | ${fmt(l.errors)} |`);
  }
  const store = get(report, 'store') as Obj | undefined;
  if (store) {
    lines.push(
      '',
      '| store | docs | index | inserts/s, index kept up (docs) | bulk load docs/s | index build s | p50 ms | p99 ms | recall@10 | bytes/vector | API p50 / p99 ms |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const backend of ['embedded', 'postgres']) {
      const b = store[backend] as Obj & { sizes: Obj[] };
      const api = b.api as Obj | undefined;
      for (const [k, size] of b.sizes.entries()) {
        const last = k === b.sizes.length - 1;
        lines.push(
          `| ${backend} | ${fmt(size.docs)} | ${fmt(size.index)} | ${fmt(b.insert_docs_per_s)} (${fmt(b.insert_docs)}) | ${fmt(b.bulk_docs_per_s)} | ${last ? fmt(b.index_build_s) : ''} | ` +
            `${fmt(size.p50_ms)} | ${fmt(size.p99_ms)} | ${fmt(size.recall_at_10)} | ${last ? fmt(b.bytes_per_vector) : ''} | ${last && api ? `${fmt(api.p50_ms)} / ${fmt(api.p99_ms)}` : ''} |`,
        );
      }
    }
  }
  // How the stores' largest size was loaded, and how many documents the insert rate is over.
  for (const [path, inserted, name] of [['search', 'search.insert_docs', 'search (embedded)'], ['store.data', 'store.data.inserted_with_upkeep', 'store (both)']] as const) {
    const load = get(report, `${path}.largest_load`);
    if (load === undefined) continue;
    const docs = get(report, path === 'search' ? 'search.api.docs' : 'store.postgres.api.docs');
    lines.push(`${name}: ${fmt(docs)} documents ${load === 'bulk then index' ? 'loaded in bulk, then indexed' : 'inserted with index upkeep, then reindexed'}; inserts with upkeep measured on ${fmt(get(report, inserted))} documents`);
  }
  for (const [path, name] of [['search.api', 'embedded'], ['store.postgres.api', 'PostgreSQL']] as const) {
    const api = get(report, path) as Obj | undefined;
    const p = api?.profile as Record<string, Obj> | undefined;
    if (!api || !p) continue;
    const part = (key: string) => `${fmt(p[key]!.p50_ms)} / ${fmt(p[key]!.p99_ms)}`;
    lines.push(
      `API search by id, ${name}, ${fmt(api.docs)} documents, p50 / p99 ms: end to end ${fmt(api.p50_ms)} / ${fmt(api.p99_ms)}; HTTP round trip ${part('http_round_trip')}, ` +
        `collection lookup ${part('collection_lookup')}, fetch by id ${part('fetch_by_id')}, search excluding the example ${part('search_excluding_example')} ` +
        `(plain ${part('search_plain')}); the server's search core ${part('server_search_core')}`,
    );
  }
  for (const [scenario, name] of [['images', 'images'], ['texts', 'texts']] as const) {
    const s = get(report, scenario) as Obj | undefined;
    if (!s) continue;
    const a = s.tessera as Obj, b = s.peer as Obj;
    lines.push(`${name}: tessera batch ${fmt(a.batch)}, wall ${fmt(a.wall_s)} s, inference ${fmt(a.inference_s)} s${a.preprocess_s !== undefined ? `, preprocessing ${fmt(a.preprocess_s)} s (overlapped)` : ''}; ` +
      `transformers.js batch ${fmt(b.batch)}, wall ${fmt(b.wall_s)} s, inference ${fmt(b.inference_s)} s${b.preprocess_s !== undefined ? `, preprocessing ${fmt(b.preprocess_s)} s` : ''}`);
  }
  for (const tower of ['vision', 'text'] as const) {
    const p = get(report, `rewrite.profile.${tower}`) as Obj | undefined;
    if (!p) continue;
    const original = p.original as Obj;
    const rewritten = p.rewritten as Obj | undefined;
    const fused = p.fused ? Object.entries(p.fused as Obj).map(([op, n]) => `${fmt(n)} ${op}`).join(', ') : 'nothing';
    lines.push(`graph rewrite, ${tower}: fused ${fused}; ONNX Runtime kernels ${fmt(original.kernels_ms)} ms` +
      (rewritten ? ` before, ${fmt(rewritten.kernels_ms)} ms after; MatMul ${fmt(original.matmul_share)} of the kernels before, so at most ${fmt(p.bound_without_faster_matmul)}x without faster MatMuls` : ` (${String(p.note)})`));
  }
  const timings = get(report, 'timings') as Record<string, number> | undefined;
  if (timings) lines.push('', `seconds: ${Object.entries(timings).map(([key, s]) => `${key.replace(/_s$/, '')} ${fmt(s)}`).join(', ')}`);
  for (const tower of ['vision', 'text'] as const) {
    const p = get(report, `q8.profile.${tower}`) as Obj | undefined;
    if (!p) continue;
    const integer = (x: Obj): string => fmt(((x.by_op as Record<string, Obj>).MatMulInteger?.ms as number | undefined) ?? 0);
    const [shipped, ran] = [p.shipped as Obj, p.tessera as Obj];
    lines.push(`q8 ${tower}: ONNX Runtime kernels ${fmt(shipped.kernels_ms)} ms as shipped (MatMulInteger ${integer(shipped)} ms), ` +
      `${fmt(ran.kernels_ms)} ms as tessera runs it (${String(p.int8_variant)}, MatMulInteger ${integer(ran)} ms)`);
  }
  return lines.join('\n');
}
