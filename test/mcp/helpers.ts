// What the MCP tests share: colour documents the forged colour model ranks right ("red" finds
// the red image), and reading tool answers as the SDK's client returns them.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import sharp from 'sharp';
import { solidImage } from '../helpers/images.ts';

export const RGB = { red: [255, 0, 0], green: [0, 128, 0], blue: [0, 0, 255], yellow: [255, 255, 0] } as const;
export type Colour = keyof typeof RGB;

export const png = (c: Colour, w = 64, h = 48) => solidImage(w, h, RGB[c]);
export const dataUri = async (c: Colour) => `data:image/png;base64,${(await png(c)).toString('base64')}`;

/** One image per colour and two texts naming colours (the colour model reads nothing else). */
export async function colourDocuments() {
  const docs: object[] = [];
  for (const c of Object.keys(RGB) as Colour[]) docs.push({ id: `images/${c}.png`, image: await dataUri(c), metadata: { colour: c, kind: 'photo' } });
  docs.push({ id: 'notes/sea.txt', text: 'the blue sea under a blue sky', metadata: { colour: 'blue', kind: 'note' } });
  docs.push({ id: 'notes/meadow.txt', text: 'a green meadow in spring', metadata: { colour: 'green', kind: 'note' } });
  return docs;
}

/** A folder of colour PNGs (and a text file), as index_path reads one. */
export async function colourFolder(dir: string): Promise<string> {
  await mkdir(join(dir, 'photos'), { recursive: true });
  for (const c of ['red', 'green', 'blue'] as const) await writeFile(join(dir, 'photos', `${c}.png`), await png(c, 80, 60));
  await writeFile(join(dir, 'yellow.txt'), 'a yellow sunflower');
  return dir;
}

type Block = { type: string; text?: string; data?: string; mimeType?: string };
export interface Answer {
  isError?: boolean;
  content: Block[];
}

export async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Answer> {
  return (await client.callTool({ name, arguments: args })) as Answer;
}

/** A successful answer's text blocks. */
export function texts(answer: Answer): string[] {
  assert.ok(!answer.isError, `the tool failed: ${answer.content[0]?.text}`);
  return answer.content.flatMap((b) => (b.type === 'text' ? [b.text!] : []));
}

/** A JSON answer (list_collections, classify, embed, the writing tools). */
export function json<T>(answer: Answer): T {
  return JSON.parse(texts(answer)[0]!) as T;
}

/** A search answer's results: id and score from each result's JSON, in order. */
export function hits(answer: Answer): { id: string; score: number; image?: string; text?: string; metadata: Record<string, unknown> }[] {
  return texts(answer).slice(1).map((t) => JSON.parse(t.split('\n')[1]!));
}

/** A tool error's registry code and message ("QUERY_INVALID: ..."). */
export function toolError(answer: Answer): { code: string; message: string } {
  assert.equal(answer.isError, true, `expected a tool error, got ${JSON.stringify(answer).slice(0, 300)}`);
  const text = answer.content[0]!.text!;
  const at = text.indexOf(': ');
  return { code: text.slice(0, at), message: text.slice(at + 2) };
}

/** The image blocks of an answer. */
export const images = (answer: Answer) => answer.content.filter((b) => b.type === 'image');

/** The mean colour of an image block, decoded with sharp: [r, g, b]. */
export async function meanColour(block: Block): Promise<number[]> {
  assert.equal(block.type, 'image');
  const bytes = Buffer.from(block.data!, 'base64');
  const { channels } = await sharp(bytes).stats();
  return channels.slice(0, 3).map((c) => c.mean);
}

/** Whether [r, g, b] is clearly `colour` (within a JPEG's error). */
export function looks(rgb: number[], colour: Colour): boolean {
  return RGB[colour].every((v, i) => Math.abs(v - rgb[i]!) < 24);
}

/** The tool names a client is offered. */
export async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((t) => t.name).sort();
}

export const READ_TOOLS = ['classify', 'embed', 'find_similar', 'get_document', 'list_collections', 'search'];
export const WRITE_TOOLS = ['add_documents', 'index_path'];
