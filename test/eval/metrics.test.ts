import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bestRank,
  crossModalRecall,
  mrrAt,
  ndcgAt,
  nearestNeighbours,
  neighbourFigures,
  recallAtK,
  topK,
  topKCorrect,
  trecOrder,
  type Scored,
} from '../../src/eval/metrics.ts';

const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} != ${expected}`);
const run = (pairs: [string, number][]): Scored[] => pairs.map(([id, score]) => ({ id, score }));
const qrels = (pairs: [string, number][]) => new Map(pairs);

describe('bestRank', () => {
  it('counts the items placed before the best positive, ties by index', () => {
    const scores = [0.5, 0.9, 0.5, 0.1];
    assert.equal(bestRank(scores, [1]), 1);
    assert.equal(bestRank(scores, [0]), 2); // ties with index 2, comes first
    assert.equal(bestRank(scores, [2]), 3); // ties with index 0, comes after it
    assert.equal(bestRank(scores, [3]), 4);
    assert.equal(bestRank(scores, [3, 2]), 3); // any positive: the better placed counts
    assert.equal(bestRank(scores, []), Infinity);
  });
});

describe('crossModalRecall (CLIP-benchmark)', () => {
  // Captions 0, 1 describe image 0; captions 2, 3 image 1.
  const scores = [
    [0.9, 0.1], // caption 0: image 0 first
    [0.2, 0.8], // caption 1: image 0 second
    [0.3, 0.3], // caption 2: a tie, image 0 (earlier) placed first, so image 1 second
    [0.1, 0.7], // caption 3: image 1 first
  ];
  const figures = crossModalRecall((t, i) => scores[t]![i]!, [0, 0, 1, 1], 2, [1, 2]);

  it('image retrieval: each caption ranks the images', () => {
    assert.deepEqual(figures.image_retrieval, { 'recall@1': 0.5, 'recall@2': 1 });
  });

  it('text retrieval: an image hits when any of its captions is in the top k', () => {
    // Image 0 ranks captions 0 (0.9) first: hit at 1. Image 1 ranks caption 1 (0.8, not its
    // own) first, then its caption 3 (0.7): first hit at 2, although caption 2 is only 3rd.
    assert.deepEqual(figures.text_retrieval, { 'recall@1': 0.5, 'recall@2': 1 });
  });

  it('agrees with ranking every column separately, ties included', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const imageOf = [0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 4, 4];
    const m = imageOf.map(() => Array.from({ length: 5 }, () => Math.round(rand() * 4) / 4)); // coarse: many ties
    const got = crossModalRecall((t, i) => m[t]![i]!, imageOf, 5, [1, 2, 3]);
    const textRanks = [0, 1, 2, 3, 4].map((i) => bestRank(m.map((row) => row[i]!), imageOf.flatMap((g, t) => (g === i ? [t] : []))));
    const imageRanks = m.map((row, t) => bestRank(row, [imageOf[t]!]));
    const at = (ranks: number[]) => Object.fromEntries([1, 2, 3].map((k) => [`recall@${k}`, ranks.filter((r) => r <= k).length / ranks.length]));
    assert.deepEqual(got, { image_retrieval: at(imageRanks), text_retrieval: at(textRanks) });
  });

  it('scores 1.0 at k = 1 for a perfect model and counts each image once', () => {
    const perfect = crossModalRecall((t, i) => ([0, 0, 0, 1, 1][t] === i ? 1 : 0), [0, 0, 0, 1, 1], 2, [1]);
    assert.deepEqual(perfect, { image_retrieval: { 'recall@1': 1 }, text_retrieval: { 'recall@1': 1 } });
  });
});

describe('trec_eval ordering', () => {
  it('sorts by score, ties by document id descending', () => {
    const sorted = run([['a', 0.5], ['c', 0.9], ['b', 0.5], ['d', 0.1]]).sort(trecOrder).map((d) => d.id);
    assert.deepEqual(sorted, ['c', 'b', 'a', 'd']);
  });
});

describe('nDCG@k (trec_eval ndcg_cut)', () => {
  it('uses linear graded gain and a log2(rank + 1) discount', () => {
    const judged = qrels([['d1', 2], ['d2', 1], ['d3', 0], ['d4', 1]]);
    const ranked = run([['d3', 0.9], ['d1', 0.8], ['d2', 0.7], ['d5', 0.6], ['d4', 0.5]]);
    const dcg = 0 + 2 / Math.log2(3) + 1 / Math.log2(4);
    const idcg = 2 + 1 / Math.log2(3) + 1 / Math.log2(4); // ideal: 2, 1, 1
    close(ndcgAt(ranked, judged, 3), dcg / idcg);
    // At 5: d4 (rank 5) counts too; the ideal list has only three relevant documents.
    close(ndcgAt(ranked, judged, 5), (dcg + 1 / Math.log2(6)) / idcg);
  });

  it('gain is the relevance value, not 2^rel - 1', () => {
    close(ndcgAt(run([['x', 0.9], ['y', 0.8]]), qrels([['y', 3]]), 2), 3 / Math.log2(3) / 3);
  });

  it('breaks ties by document id descending, as trec_eval', () => {
    const tied = run([['a', 0.5], ['b', 0.5]]);
    close(ndcgAt(tied, qrels([['a', 1]]), 1), 0); // b comes first
    close(ndcgAt(tied, qrels([['b', 1]]), 1), 1);
    close(ndcgAt(tied, qrels([['a', 1]]), 2), 1 / Math.log2(3));
  });

  it('is 0 for a query without relevant documents', () => {
    close(ndcgAt(run([['a', 1]]), qrels([['a', 0]]), 10), 0);
  });

  it('ranks several equally relevant documents in any order the same', () => {
    const judged = qrels([['a', 1], ['b', 1]]);
    close(ndcgAt(run([['a', 0.9], ['b', 0.8], ['c', 0.1]]), judged, 10), 1);
    close(ndcgAt(run([['b', 0.9], ['a', 0.8], ['c', 0.1]]), judged, 10), 1);
  });
});

describe('recall@k and MRR@k', () => {
  it('recall counts the relevant documents found over all relevant ones', () => {
    const judged = qrels([['a', 1], ['b', 2], ['c', 1], ['z', 0]]);
    close(recallAtK(run([['a', 0.9], ['z', 0.8], ['b', 0.1]]), judged, 2), 1 / 3);
    close(recallAtK(run([['a', 0.9], ['z', 0.8], ['b', 0.1]]), judged, 3), 2 / 3);
    close(recallAtK(run([['a', 0.9]]), qrels([['a', 0]]), 1), 0);
  });

  it('MRR takes the first relevant document within k, ties by id descending', () => {
    const judged = qrels([['a', 1], ['c', 2]]);
    close(mrrAt(run([['x', 0.9], ['a', 0.5], ['b', 0.5], ['c', 0.1]]), judged, 10), 1 / 3); // x, b, a
    close(mrrAt(run([['x', 0.9], ['a', 0.5], ['b', 0.5]]), judged, 2), 0);
    close(mrrAt(run([['c', 0.9]]), judged, 1), 1);
  });
});

describe('topK', () => {
  it('keeps the k best, ties by index, skipping what it is told to', () => {
    const scores = [0.2, 0.9, 0.5, 0.9, 0.5, 0.1];
    assert.deepEqual(topK(scores.length, 3, (i) => scores[i]!).map((t) => t.index), [1, 3, 2]);
    assert.deepEqual(topK(scores.length, 3, (i) => scores[i]!, (i) => i === 1).map((t) => t.index), [3, 2, 4]);
    assert.deepEqual(topK(2, 5, (i) => scores[i]!).map((t) => t.index), [1, 0]);
  });
});

describe('nearestNeighbours', () => {
  it('equals a brute-force ranking of all the others, ties by index', () => {
    const v = [[1, 0], [1, 0], [0, 1], [1, 0], [0.6, 0.8]].map((x) => Float32Array.from(x));
    const got = nearestNeighbours(v, 3).map((n) => n.map((x) => x.index));
    const brute = v.map((q, i) => topK(v.length, 3, (j) => q[0]! * v[j]![0]! + q[1]! * v[j]![1]!, (j) => j === i).map((x) => x.index));
    assert.deepEqual(got, brute);
    assert.deepEqual(got[0], [1, 3, 4]); // 1 and 3 tie at 1.0: lower index first
    assert.deepEqual(got[2], [4, 0, 1]); // 0, 1, 3 tie at 0
  });
});

describe('same-class neighbours', () => {
  it('precision over k, recall over the other members of the class, hit when any', () => {
    // Neighbours' labels, nearest first; the query is class 1, which has 4 members (3 others).
    const labels = [1, 2, 1, 1, 3];
    assert.deepEqual(neighbourFigures(labels, 1, 4, 1), { precision: 1, recall: 1 / 3, hit: 1 });
    assert.deepEqual(neighbourFigures(labels, 1, 4, 5), { precision: 3 / 5, recall: 1, hit: 1 });
    assert.deepEqual(neighbourFigures([2, 3], 1, 4, 2), { precision: 0, recall: 0, hit: 0 });
    assert.deepEqual(neighbourFigures([2], 1, 1, 1), { precision: 0, recall: 0, hit: 0 }); // a class of one
  });
});

describe('top-k accuracy', () => {
  it('ties go to the earlier label', () => {
    assert.equal(topKCorrect([0.5, 0.5, 0.1], 0, 1), true);
    assert.equal(topKCorrect([0.5, 0.5, 0.1], 1, 1), false);
    assert.equal(topKCorrect([0.5, 0.5, 0.1], 1, 2), true);
  });
});
