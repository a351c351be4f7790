// Few-shot classifiers on the PostgreSQL store: two replicas on one database share them, and
// concurrent trainings through both are serialised with none lost.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { warmCoolItems, type LabelledItem } from '../../src/eval/warm-cool.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { startPostgres, type PgServer } from '../helpers/postgres.ts';
import { startServer } from '../helpers/server.ts';

let pg: PgServer;
const stores: VectorStore[] = [];
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  for (const s of stores) await s.close();
  await pg?.close();
});

const asExamples = (items: readonly LabelledItem[]) => items.map((x) => (x.text !== undefined ? { text: x.text, label: x.label } : { image: x.image!, label: x.label }));

test('replicas on one PostgreSQL share classifiers and serialise concurrent trainings', { timeout: 120_000 }, async () => {
  const url = await pg.createDatabase();
  const open = async () => {
    const s = await openPostgresStore(url);
    stores.push(s);
    return s;
  };
  const [one, two] = await Promise.all([startServer({ model: 'colour', store: await open() }), startServer({ model: 'colour', store: await open() })]);
  const items = await warmCoolItems(11, 4);
  const created = await one.post('/v1/train', { model: 'jina-clip-v1', input: asExamples(items.slice(0, 2)) });
  assert.equal(created.status, 200);
  const { classifier_id: id } = (await created.json()) as { classifier_id: string };
  const calls = 10;
  const responses = await Promise.all(Array.from({ length: calls }, (_, i) => (i % 2 ? two : one).post('/v1/train', { classifier_id: id, input: asExamples(items.slice(2 + 2 * i, 4 + 2 * i)) })));
  for (const r of responses) assert.equal(r.status, 200, await r.text());
  const [listed] = (await (await fetch(`${two.url}/v1/classifiers`)).json()) as { updated_number: number; num_samples: number }[];
  assert.equal(listed!.updated_number, 1 + calls);
  assert.equal(listed!.num_samples, 2 + 2 * calls);
  // Either replica classifies with the result, the same way.
  const held = await warmCoolItems(99, 2, 'heldOut');
  const input = held.map((x) => (x.text !== undefined ? { text: x.text } : { image: x.image! }));
  const answers = await Promise.all([one, two].map(async (s) => ((await (await s.post('/v1/classify', { classifier_id: id, input })).json()) as { data: { prediction: string }[] }).data.map((d) => d.prediction)));
  assert.deepEqual(answers[0], answers[1]);
  assert.deepEqual(answers[0], held.map((x) => x.label));
  await Promise.all([one.close(), two.close()]);
});
