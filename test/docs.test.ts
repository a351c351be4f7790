// The documentation is the user's manual: docs/server.md must name every server option and
// every error code, and every relative link of the README and of docs/*.md must lead to a file
// (and a heading, for an anchor) that exists.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SERVER_OPTIONS } from '../src/api/config.ts';
import { ERRORS } from '../src/errors.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The page that holds the server option table and the error table.
const SERVER_PAGE = 'docs/server.md';
const serverPage = await readFile(join(ROOT, SERVER_PAGE), 'utf8');

test(`${SERVER_PAGE} documents every server option, with its environment variable and default`, () => {
  for (const [name, spec] of Object.entries(SERVER_OPTIONS)) {
    const row = serverPage.split('\n').find((line) => line.startsWith(`| \`--${name}`) && line.includes('TESSERA_'));
    assert.ok(row, `--${name} is missing from the server option table of ${SERVER_PAGE}`);
    assert.ok(row.includes(spec.env), `${spec.env} is missing from the row of --${name}`);
    if (spec.default !== '') assert.ok(row.includes(`\`${spec.default}\``), `the default of --${name} is missing or stale`);
  }
});

test(`${SERVER_PAGE} lists every error code with its status`, () => {
  for (const [code, error] of Object.entries(ERRORS)) {
    const row = serverPage.split('\n').find((line) => line.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} is missing from the error table of ${SERVER_PAGE}`);
    assert.ok(row.includes(`| ${error.status} |`), `the status of ${code} is stale in ${SERVER_PAGE}`);
  }
});

/** The lines of a Markdown file outside fenced code blocks. */
function prose(markdown: string): string[] {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const opening = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (opening && opening[1]![0] === fence[0] && opening[1]!.length >= fence.length && line.trim() === opening[1]) fence = undefined;
    } else if (opening) {
      fence = opening[1];
    } else {
      lines.push(line);
    }
  }
  return lines;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
      .replace(/<[^>]+>/g, ''); // inline HTML
    const slug = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

/** Every inline link target of a Markdown file (outside code), without images' own sources. */
function links(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of prose(markdown)) {
    const text = line.replace(/`[^`]*`/g, ''); // inline code is not a link
    for (const match of text.matchAll(/\]\(([^()\s]+)(?:\s+"[^"]*")?\)/g)) targets.push(match[1]!);
  }
  return targets;
}

test('every relative link of the README and docs/*.md leads to a file, and every anchor to a heading', async () => {
  const pages = ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const texts = new Map<string, string>();
  const read = async (path: string) => {
    if (!texts.has(path)) texts.set(path, await readFile(join(ROOT, path), 'utf8'));
    return texts.get(path)!;
  };
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    for (const target of links(await read(page))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      checked++;
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const file = path === '' ? page : relative(ROOT, join(ROOT, dirname(page), decodeURIComponent(path)));
      if (file.startsWith('..') || !existsSync(join(ROOT, file))) {
        broken.push(`${page}: ${target} (no file ${file})`);
        continue;
      }
      if (anchor === undefined) continue;
      if (!file.endsWith('.md') || statSync(join(ROOT, file)).isDirectory()) {
        broken.push(`${page}: ${target} (an anchor into a file that is not Markdown)`);
        continue;
      }
      if (!anchors(await read(file)).has(decodeURIComponent(anchor))) broken.push(`${page}: ${target} (no heading #${anchor} in ${file})`);
    }
  }
  assert.ok(checked > 50, `only ${checked} relative links found: is the link pattern still right?`);
  assert.deepEqual(broken, [], 'broken links');
});

test('the anchors are GitHub\'s', () => {
  assert.deepEqual(
    [...anchors('# The API description: `/openapi.json` and `/docs`\n## `POST /v1/embeddings`\n## Dates, places, sorting and cut-offs\n```sh\n# not a heading\n```\n## The v2 colour model (`--model demo-v2`)\n## Faults\n## Faults\n')],
    ['the-api-description-openapijson-and-docs', 'post-v1embeddings', 'dates-places-sorting-and-cut-offs', 'the-v2-colour-model---model-demo-v2', 'faults', 'faults-1'],
  );
});
