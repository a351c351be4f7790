// The README is the user's manual: it must name every server option and every error code.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { SERVER_OPTIONS } from '../src/api/config.ts';
import { ERRORS } from '../src/errors.ts';

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');

test('the README documents every server option, with its environment variable and default', () => {
  for (const [name, spec] of Object.entries(SERVER_OPTIONS)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`--${name}`) && line.includes('TESSERA_'));
    assert.ok(row, `--${name} is missing from the README's server option table`);
    assert.ok(row.includes(spec.env), `${spec.env} is missing from the row of --${name}`);
    if (spec.default !== '') assert.ok(row.includes(`\`${spec.default}\``), `the default of --${name} is missing or stale`);
  }
});

test('the README lists every error code with its status', () => {
  for (const [code, error] of Object.entries(ERRORS)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} is missing from the README's error table`);
    assert.ok(row.includes(`| ${error.status} |`), `the status of ${code} is stale in the README`);
  }
});
