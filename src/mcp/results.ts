/**
 * Search hits and documents as MCP content: per result one text block (a line an assistant
 * can quote, then the result as JSON: id, score, metadata, a video's other moments, a PDF's
 * other pages) followed by its picture as image content.
 *
 * Pictures are the search page's thumbnails (search/thumbnail.ts: at most 256 px, the frame
 * of a video moment, the page of a PDF) sent as JPEG: the MCP spec lets image content carry
 * any image type, but JPEG and PNG are the ones every client and model API takes, and a
 * 256 px JPEG is a few kilobytes.
 */
import type { ContentBlock, ImageContent } from '@modelcontextprotocol/sdk/types.js';
import sharp from 'sharp';
import { shownImage, shownMetadata } from '../api/collections.ts';
import { clock } from '../cli/search.ts';
import { mapConcurrent } from '../concurrency.ts';
import { frameTime, pageNumber, type GroupedHit } from '../search/group.ts';
import type { Metadata, StoredDocument } from '../store/store.ts';
import type { McpHost } from './host.ts';

export const PICTURE_TYPE = 'image/jpeg';
/** Pictures made at once for one answer (each may read a file, fetch a URL or run FFmpeg). */
const PICTURES_AT_ONCE = 4;
/** Characters of a text document shown in a result; get_document gives the whole text. */
export const SNIPPET_CHARS = 1000;

const round = (score: number) => Math.round(score * 10_000) / 10_000;

/** Whether a document has a picture: an image, a video's frame, or a PDF page's text (its page). */
export function pictured(doc: { modality: string; metadata: Metadata }): boolean {
  return doc.modality === 'image' || typeof doc.metadata.pdf === 'string';
}

/** A document's picture as MCP image content. DOCUMENT_NOT_FOUND (file gone, no FFmpeg...), IMAGE_UNDECODABLE. */
export async function picture(host: McpHost, collection: string, doc: StoredDocument, signal?: AbortSignal): Promise<ImageContent> {
  const thumb = await host.thumbnails.thumbnail(collection, doc, { fetchPolicy: host.fetchPolicy, maxPixels: host.maxPixels, signal });
  const jpeg = await sharp(thumb).flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toBuffer();
  return { type: 'image', data: jpeg.toString('base64'), mimeType: PICTURE_TYPE };
}

/**
 * Where an image document is, as this client may see it: a URL as is, inline data by its size
 * (the picture shows it; the base64 would only fill the assistant's context), a file by its
 * path on this machine for `tessera mcp`, by its id (the path under the indexed folder) on the server.
 */
export function shownPlace(host: McpHost, id: string, image: string): string {
  const inline = /^data:([^;,]*)/i.exec(image);
  if (inline) {
    const bytes = Math.round(((image.length - image.indexOf(',') - 1) * 3) / 4);
    return `inline ${inline[1] || 'image'} data (${bytes < 10_240 ? `${bytes} bytes` : `${Math.round(bytes / 1024)} KiB`})`;
  }
  return host.local ? image : shownImage(id, image);
}

/** Which part of a video or a PDF a result is, for the line above it. */
function partLine(hit: GroupedHit): string {
  const { video, pdf } = hit.metadata;
  if (typeof video === 'string') {
    const t = frameTime(hit);
    const others = (hit.moments ?? []).flatMap((m) => (m.t === null ? [] : [clock(m.t)]));
    return ` | video ${video}${t === null ? '' : ` at ${clock(t)}`}${others.length ? `; other matching moments at ${others.join(', ')}` : ''}`;
  }
  if (typeof pdf === 'string') {
    const page = pageNumber(hit);
    const others = (hit.pages ?? []).flatMap((p) => (p.page === null ? [] : [String(p.page)]));
    return ` | PDF ${pdf}${page === null ? '' : ` page ${page}`}${others.length ? `; other matching pages ${others.join(', ')}` : ''}`;
  }
  return hit.collapsed?.length ? ` | stands for ${hit.collapsed.length} near-identical document(s)` : '';
}

/** A hit as JSON for the assistant: the search API's result, texts cut to SNIPPET_CHARS, scores to 4 decimals. */
function hitJson(host: McpHost, hit: GroupedHit) {
  const text = hit.text ?? '';
  const content = hit.modality === 'text'
    ? { text: text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS)}… (${text.length} characters; get_document gives it whole)` : text }
    : { image: shownPlace(host, hit.id, hit.image ?? '') };
  return {
    id: hit.id,
    score: round(hit.score),
    modality: hit.modality,
    ...content,
    metadata: shownMetadata(hit.metadata),
    ...(hit.moments && { moments: hit.moments.map((m) => ({ ...m, score: round(m.score), ...(m.t !== null && { at: clock(m.t) }) })) }),
    ...(hit.pages && { pages: hit.pages.map((p) => ({ ...p, score: round(p.score) })) }),
    ...(hit.collapsed && { collapsed: hit.collapsed.map((c) => ({ ...c, score: round(c.score) })) }),
  };
}

/**
 * The content of a search answer: a summary line, then each hit's text and, for the first
 * `pictures` hits that have one, its picture. A picture that cannot be made (a file gone, no
 * FFmpeg) is said in the hit's text instead of failing the search.
 */
export async function hitsContent(
  host: McpHost,
  collection: string,
  hits: readonly GroupedHit[],
  options: { pictures: number; summary: string; signal?: AbortSignal },
): Promise<ContentBlock[]> {
  const wanted = hits.filter(pictured).slice(0, options.pictures);
  const docs = wanted.length > 0 && host.store ? await host.store.get(collection, wanted.map((h) => h.id)) : [];
  const images = new Map<string, ImageContent | string>();
  await mapConcurrent(docs, PICTURES_AT_ONCE, async (doc) => {
    try {
      images.set(doc.id, await picture(host, collection, doc, options.signal));
    } catch (err) {
      images.set(doc.id, err instanceof Error ? err.message : String(err));
    }
  }, options.signal);

  const content: ContentBlock[] = [{ type: 'text', text: options.summary }];
  hits.forEach((hit, i) => {
    const image = images.get(hit.id);
    const missing = typeof image === 'string' ? `\n(no picture: ${image})` : '';
    content.push({ type: 'text', text: `#${i + 1} ${hit.id} (score ${round(hit.score)})${partLine(hit)}\n${JSON.stringify(hitJson(host, hit))}${missing}` });
    if (image && typeof image !== 'string') content.push(image);
  });
  return content;
}

/** A stored document as JSON for the assistant: the whole text, the image's place, metadata and hash. */
export function documentJson(host: McpHost, doc: StoredDocument) {
  const content = doc.modality === 'text' ? { text: doc.text ?? '' } : { image: shownPlace(host, doc.id, doc.image ?? '') };
  return { id: doc.id, modality: doc.modality, ...content, metadata: shownMetadata(doc.metadata), hash: doc.hash };
}
