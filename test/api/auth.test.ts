// API keys: parsing of the key file and TESSERA_API_KEYS, the Authorization header, and
// that no error message ever repeats what the client sent.
import assert from 'node:assert/strict';
import crypto, { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, mock, test } from 'node:test';
import { ANONYMOUS, authenticate, loadApiKeys, type ApiKeys } from '../../src/api/auth.ts';
import { TesseraError, type ErrorCode } from '../../src/errors.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-auth-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
async function keyFile(text: string): Promise<string> {
  const path = join(dir, `keys-${fileCount++}.txt`);
  await writeFile(path, text);
  return path;
}

const hashId = (key: string) => `key-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;

function throwsCode(fn: () => unknown, code: ErrorCode, check?: (message: string) => void): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TesseraError, String(error));
    assert.equal(error.code, code, error.message);
    check?.(error.message);
    return true;
  });
}

async function rejectsCode(promise: Promise<unknown>, code: ErrorCode, check?: (message: string) => void): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof TesseraError, String(error));
    assert.equal(error.code, code, error.message);
    check?.(error.message);
    return true;
  });
}

describe('loadApiKeys', () => {
  test('nothing configured: null (authentication off); an empty variable counts as unset', async () => {
    assert.equal(await loadApiKeys({}), null);
    assert.equal(await loadApiKeys({ env: '' }), null);
    assert.equal(await loadApiKeys({ env: '   ' }), null);
  });

  test('file: one key per line, blank lines and # comments ignored, optional name:key', async () => {
    const file = await keyFile(
      ['# team keys', '', 'tk-plain-1', '   # indented comment', '  alice:tk-alice  ', 'bob : tk-bob', 'tk#hash', '\r', 'carol:tk:with:colons\r'].join('\n'),
    );
    const keys = await loadApiKeys({ file });
    assert.ok(keys);
    assert.equal(keys.size, 5);
    assert.equal(keys.match('tk-plain-1'), hashId('tk-plain-1'));
    assert.equal(keys.match('tk-alice'), 'alice');
    assert.equal(keys.match('tk-bob'), 'bob');
    assert.equal(keys.match('tk#hash'), hashId('tk#hash'));
    assert.equal(keys.match('tk:with:colons'), 'carol');
    assert.equal(keys.match('# team keys'), null);
    assert.equal(keys.match('alice:tk-alice'), null);
    assert.equal(keys.match('tk-alic'), null);
    assert.equal(keys.match(''), null);
  });

  test('unnamed ids are key- and 12 hex digits of the sha256, and do not contain the key', async () => {
    const keys = await loadApiKeys({ env: 'tk-secret-value' });
    assert.ok(keys);
    const id = keys.match('tk-secret-value');
    assert.match(id ?? '', /^key-[0-9a-f]{12}$/);
    assert.ok(!id!.includes('secret'));
  });

  test('env: comma-separated, whitespace and empty entries skipped, names allowed', async () => {
    const keys = await loadApiKeys({ env: ' tk-one, ,svc:tk-two,,tk-three ' });
    assert.ok(keys);
    assert.equal(keys.size, 3);
    assert.equal(keys.match('tk-one'), hashId('tk-one'));
    assert.equal(keys.match('tk-two'), 'svc');
    assert.equal(keys.match('tk-three'), hashId('tk-three'));
    assert.equal(keys.match(' tk-one'), null);
  });

  test('file and env together: the keys are merged', async () => {
    const file = await keyFile('alice:tk-alice\n');
    const keys = await loadApiKeys({ file, env: 'bob:tk-bob,tk-anon' });
    assert.ok(keys);
    assert.equal(keys.size, 3);
    assert.equal(keys.match('tk-alice'), 'alice');
    assert.equal(keys.match('tk-bob'), 'bob');
    assert.equal(keys.match('tk-anon'), hashId('tk-anon'));
  });

  test('a file that holds no key is an error, not authentication off', async () => {
    const file = await keyFile('# nothing yet\n\n');
    await rejectsCode(loadApiKeys({ file }), 'INVALID_ARGUMENT', (m) => assert.match(m, /holds no key/));
    await rejectsCode(loadApiKeys({ env: ' , ,' }), 'INVALID_ARGUMENT', (m) => assert.match(m, /TESSERA_API_KEYS holds no key/));
  });

  test('a missing file is an error naming it', async () => {
    const file = join(dir, 'absent.txt');
    await rejectsCode(loadApiKeys({ file }), 'INVALID_ARGUMENT', (m) => assert.ok(m.includes(file) && m.includes('ENOENT'), m));
  });

  test('malformed entries are errors that name the line but never show the key', async () => {
    const cases: Array<[string, RegExp]> = [
      ['tk-first\nnot a valid:name-secret-1\n', /line 2: the text before the first ':'/],
      ['alice:\n', /line 1: the key after 'alice:' is empty/],
      ['\ntk-secret-2 # my laptop\n', /line 2: a key must not contain whitespace/],
      ['alice:tk-secret-3\nbob:tk-secret-3\n', /line 2: the same key as .* line 1/],
      ['alice:tk-secret-4\nalice:tk-secret-5\n', /line 2: the name alice is already used by .* line 1/],
    ];
    for (const [text, expected] of cases) {
      const file = await keyFile(text);
      await rejectsCode(loadApiKeys({ file }), 'INVALID_ARGUMENT', (m) => {
        assert.match(m, expected);
        assert.ok(m.includes(file), m);
        assert.ok(!/secret/.test(m), `message shows the key: ${m}`);
      });
    }
  });

  test('a key repeated between file and env is an error naming both places', async () => {
    const file = await keyFile('tk-secret-dup\n');
    await rejectsCode(loadApiKeys({ file, env: 'tk-secret-dup' }), 'INVALID_ARGUMENT', (m) => {
      assert.ok(m.startsWith('TESSERA_API_KEYS entry 1: the same key as '), m);
      assert.ok(m.includes(`${file} line 1`), m);
      assert.ok(!m.includes('secret'), m);
    });
  });

  test('match compares against every stored key, whichever matches (no early exit)', async () => {
    const keys = await loadApiKeys({ env: 'a:tk-a,b:tk-b,c:tk-c,d:tk-d' });
    assert.ok(keys);
    const spy = mock.method(crypto, 'timingSafeEqual');
    syncBuiltinESMExports(); // so the named import in auth.ts sees the spy
    try {
      for (const [presented, id] of [['tk-a', 'a'], ['tk-d', 'd'], ['tk-x', null]] as const) {
        spy.mock.resetCalls();
        assert.equal(keys.match(presented), id);
        assert.equal(spy.mock.callCount(), 4, `comparisons for ${presented}`);
        for (const call of spy.mock.calls) {
          assert.equal((call.arguments[0] as Buffer).length, 32); // digests, not raw keys
          assert.equal((call.arguments[1] as Buffer).length, 32);
        }
      }
    } finally {
      spy.mock.restore();
      syncBuiltinESMExports();
    }
  });
});

describe('authenticate', () => {
  let keys: ApiKeys;
  const KEY = 'tk-9f8e7d6c5b4a3210';
  before(async () => {
    keys = (await loadApiKeys({ env: `alice:${KEY},tk-other` }))!;
  });

  test('authentication off: anonymous whatever is sent', () => {
    assert.equal(authenticate(null, undefined), ANONYMOUS);
    assert.equal(authenticate(null, 'Bearer whatever'), 'anonymous');
    assert.equal(authenticate(null, 'Basic abc'), 'anonymous');
  });

  test('the right key gives its id; the scheme is case-insensitive and whitespace tolerated', () => {
    assert.equal(authenticate(keys, `Bearer ${KEY}`), 'alice');
    assert.equal(authenticate(keys, `bearer ${KEY}`), 'alice');
    assert.equal(authenticate(keys, `BEARER ${KEY}`), 'alice');
    assert.equal(authenticate(keys, `  Bearer \t ${KEY}  `), 'alice');
    assert.equal(authenticate(keys, 'Bearer tk-other'), hashId('tk-other'));
  });

  test('no header, or no key after Bearer: AUTH_API_KEY_MISSING (401)', () => {
    for (const header of [undefined, '', '   ', 'Bearer', 'Bearer ', 'bearer    ']) {
      throwsCode(() => authenticate(keys, header), 'AUTH_API_KEY_MISSING', (m) => assert.match(m, /Authorization: Bearer <your key>|no key after "Bearer"/));
    }
    assert.equal(new TesseraError('AUTH_API_KEY_MISSING', '').status, 401);
  });

  test("placeholders clients send for an unset key ('Bearer None' from LlamaIndex) count as missing", () => {
    for (const token of ['None', 'none', 'undefined', 'null', 'NULL']) {
      throwsCode(() => authenticate(keys, `Bearer ${token}`), 'AUTH_API_KEY_MISSING');
    }
  });

  test('another scheme, or a bare key without a scheme: AUTH_API_KEY_INVALID, key not repeated', () => {
    for (const header of [`Basic ${KEY}`, `Token ${KEY}`, KEY, `${KEY} Bearer`, `Bearer:${KEY}`]) {
      throwsCode(() => authenticate(keys, header), 'AUTH_API_KEY_INVALID', (m) => {
        assert.match(m, /must use the Bearer scheme/);
        assert.ok(!m.includes(KEY) && !m.includes('9f8e7d'), m);
      });
    }
  });

  test('a wrong key: AUTH_API_KEY_INVALID (401), and the message does not contain it', () => {
    for (const wrong of ['tk-wrong-key-123456', `${KEY}x`, KEY.slice(0, -1), KEY.toUpperCase(), `alice:${KEY}`]) {
      throwsCode(() => authenticate(keys, `Bearer ${wrong}`), 'AUTH_API_KEY_INVALID', (m) => {
        assert.equal(m, 'the API key is not valid for this server');
        assert.ok(!m.includes(wrong));
      });
    }
    assert.equal(new TesseraError('AUTH_API_KEY_INVALID', '').status, 401);
  });
});
