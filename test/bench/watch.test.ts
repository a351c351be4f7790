// `tessera bench --only watch` plumbing at the tiny size: every figure it reports is there.
// No timing assertions: this machine is shared.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SCENARIOS, runBench } from '../../bench/run.ts';
import { tempDir } from '../helpers/models.ts';

test('bench watch: latency, tree set-up against recursive fs.watch, burst; not run by default', { timeout: 300_000 }, async () => {
  assert.ok(!DEFAULT_SCENARIOS.includes('watch'), 'watch runs only when named');
  process.env.TESSERA_CACHE = await tempDir('tessera-bench-watch-cache-');
  const report = await runBench({ size: 'tiny', scenarios: ['watch'] });
  const watch = report.watch as Record<string, unknown> & { tree: Record<string, Record<string, number>>; burst: Record<string, number> };
  for (const key of ['latency_p50_ms', 'latency_p99_ms', 'setup_ms', 'rss_mb']) assert.equal(typeof watch[key], 'number', key);
  assert.equal(watch.latency_files, 10);
  assert.ok((watch.latency_p50_ms as number) >= 1000, 'not before the settle period');
  assert.equal(watch.tree.tessera!.watches, 22, 'one watch per folder: 20 folders, the one above them, the root');
  assert.ok(watch.tree.node_recursive_fs_watch!.watches! > 2000, 'recursive fs.watch: one per file');
  assert.equal(watch.burst.files, 200);
  assert.equal(watch.burst.failed, 0);
  assert.ok(watch.burst.max_paths_per_run! <= 256);
});
