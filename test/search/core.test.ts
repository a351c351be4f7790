// The search core's pure parts: query parsing (HTTP and command line), parameters, rank
// fusion and the path rule for thumbnails.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TesseraError, type ErrorCode } from '../../src/errors.ts';
import { reciprocalRankFusion } from '../../src/search/fusion.ts';
import { parseSearchParameters } from '../../src/search/params.ts';
import { parseQuery, parseQueryWords, splitWeight } from '../../src/search/query.ts';
import { inside } from '../../src/index/sources.ts';
import { makeThumbnail, ThumbnailCache } from '../../src/search/thumbnail.ts';
import { solidImage } from '../helpers/images.ts';

function throwsCode(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TesseraError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe('parseQuery', () => {
  test('a string, each kind of term, and weighted lists', () => {
    assert.deepEqual(parseQuery('red car'), [{ kind: 'text', text: 'red car', weight: 1, field: 'query' }]);
    assert.deepEqual(parseQuery({ image: 'https://example.com/a.png' }), [{ kind: 'url', url: 'https://example.com/a.png', weight: 1, field: 'query.image' }]);
    assert.deepEqual(parseQuery({ image: 'data:image/png;base64,AAAA' })[0]!.kind, 'image');
    assert.deepEqual(parseQuery([{ id: 'a/b.png', weight: 2 }, { text: 'blue', weight: -0.5 }, 'x']), [
      { kind: 'id', id: 'a/b.png', weight: 2, field: 'query[0].id' },
      { kind: 'text', text: 'blue', weight: -0.5, field: 'query[1].text' },
      { kind: 'text', text: 'x', weight: 1, field: 'query[2]' },
    ]);
  });

  test('every malformed query is QUERY_INVALID naming the field', () => {
    throwsCode(() => parseQuery(undefined), 'QUERY_INVALID', /query is required/);
    throwsCode(() => parseQuery(42), 'QUERY_INVALID', /^query: expected a string/);
    throwsCode(() => parseQuery({ text: 'a', image: 'b' }), 'QUERY_INVALID', /exactly one of .* text and image/);
    throwsCode(() => parseQuery({ txt: 'a' }), 'QUERY_INVALID', /unknown field "txt"/);
    throwsCode(() => parseQuery([{ text: 'a', weight: Number.NaN }]), 'QUERY_INVALID', /query\[0\]\.weight/);
    throwsCode(() => parseQuery([{ text: 'a', weight: '2' }]), 'QUERY_INVALID', /query\[0\]\.weight/);
    throwsCode(() => parseQuery({ image: 'ftp://x/y.png' }), 'QUERY_INVALID', /only http\(s\) URLs/);
    throwsCode(() => parseQuery({ text: 'x'.repeat(11) }, 'query', 10), 'QUERY_INVALID', /11 characters but at most 10/);
    throwsCode(() => parseQuery(Array.from({ length: 33 }, () => 'a')), 'QUERY_INVALID', /at most 32 terms/);
    throwsCode(() => parseQuery({ id: '' }), 'QUERY_INVALID', /query\.id/);
  });
});

describe('command-line queries', () => {
  test('"W:" weights and rclip-style + and - between texts', () => {
    assert.deepEqual(splitWeight('2:red'), { weight: 2, rest: 'red' });
    assert.deepEqual(splitWeight('-0.5:blue sky'), { weight: -0.5, rest: 'blue sky' });
    assert.deepEqual(splitWeight('http://x/a.png'), { weight: 1, rest: 'http://x/a.png' });
    assert.deepEqual(splitWeight('12:30 meeting'), { weight: 12, rest: '30 meeting' });
    const terms = parseQueryWords(['red', 'car', '-', 'blue', '+', '2:green']);
    assert.deepEqual(terms.map((t) => [t.kind === 'text' ? t.text : '', t.weight]), [['red car', 1], ['blue', -1], ['green', 2]]);
    throwsCode(() => splitWeight('0:red'), 'QUERY_INVALID', /other than 0/);
  });
});

describe('parseSearchParameters', () => {
  test('defaults and valid values', () => {
    assert.deepEqual(parseSearchParameters({}), { k: 10, offset: 0, mode: 'vector' });
    assert.deepEqual(parseSearchParameters({ k: 1000, offset: 5, min_score: -0.2, modality: 'image', mode: 'hybrid', filter: { year: { $gte: 2020 } } }), {
      k: 1000, offset: 5, minScore: -0.2, modality: 'image', mode: 'hybrid', filter: { year: { $gte: 2020 } },
    });
  });
  test('out of range: SEARCH_PARAMETER_INVALID naming the field; bad filters: FILTER_INVALID', () => {
    throwsCode(() => parseSearchParameters({ k: 0 }), 'SEARCH_PARAMETER_INVALID', /^k: expected an integer from 1 to 1000 but received number 0/);
    throwsCode(() => parseSearchParameters({ k: 1.5 }), 'SEARCH_PARAMETER_INVALID', /^k: /);
    throwsCode(() => parseSearchParameters({ offset: 10_001 }), 'SEARCH_PARAMETER_INVALID', /^offset: /);
    throwsCode(() => parseSearchParameters({ min_score: Number.POSITIVE_INFINITY }), 'SEARCH_PARAMETER_INVALID', /^min_score: /);
    throwsCode(() => parseSearchParameters({ modality: 'audio' }), 'SEARCH_PARAMETER_INVALID', /^modality: expected one of "text", "image"/);
    throwsCode(() => parseSearchParameters({ mode: 'bm25' }), 'SEARCH_PARAMETER_INVALID', /^mode: /);
    throwsCode(() => parseSearchParameters({ filter: [1] }), 'FILTER_INVALID', /^filter: /);
  });
});

describe('reciprocalRankFusion', () => {
  test('sums 1 / (60 + rank) over rankings; agreement beats one first place', () => {
    const fused = reciprocalRankFusion([['a', 'b', 'c'], ['b', 'd']]);
    assert.deepEqual(fused.map((f) => f.id), ['b', 'a', 'd', 'c']);
    assert.ok(Math.abs(fused[0]!.score - (1 / 62 + 1 / 61)) < 1e-12);
    assert.ok(Math.abs(fused[1]!.score - 1 / 61) < 1e-12);
    assert.deepEqual(reciprocalRankFusion([[], []]), []);
  });
});

describe('thumbnails', () => {
  test('inside: the root itself and below, never a sibling with the same prefix', () => {
    assert.ok(inside('/data/photos', '/data/photos/a.png'));
    assert.ok(inside('/data/photos', '/data/photos'));
    assert.ok(!inside('/data/photos', '/data/photos-private/a.png'));
    assert.ok(!inside('/data/photos', '/etc/passwd'));
  });

  test('the cache keeps within its byte bound, dropping the least recently used', async () => {
    const source = await solidImage(600, 300, [10, 200, 30]);
    const thumb = await makeThumbnail(source);
    const cache = new ThumbnailCache(thumb.length * 2 + 1); // room for two
    const doc = (id: string) => ({ id, modality: 'image' as const, image: `data:image/png;base64,${source.toString('base64')}`, metadata: {}, hash: id });
    await cache.thumbnail('c', doc('a'));
    await cache.thumbnail('c', doc('b'));
    await cache.thumbnail('c', doc('a')); // a is now the most recent
    assert.equal(cache.made, 2);
    await cache.thumbnail('c', doc('c')); // evicts b
    assert.equal(cache.size, 2);
    await cache.thumbnail('c', doc('a'));
    assert.equal(cache.made, 3);
    await cache.thumbnail('c', doc('b'));
    assert.equal(cache.made, 4);
  });
});
