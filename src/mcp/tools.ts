/**
 * What every tool shares: its definition, the `collection` argument, unknown arguments refused,
 * and failures as MCP tool errors (`isError: true`, "CODE: message") rather than protocol
 * errors, so that the assistant reads them and can correct its call.
 */
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { TesseraError } from '../errors.ts';
import { requireCollection } from '../search/collection.ts';
import type { CollectionDescriptor, VectorStore } from '../store/store.ts';
import { validateCollectionName } from '../store/validate.ts';
import type { McpCaller, McpHost } from './host.ts';
import { arg } from './schema.ts';

export type ToolArgs = Record<string, unknown>;

/** One call of a tool: the host, the caller, and the signal that stops its work. */
export interface ToolCall {
  host: McpHost;
  caller: McpCaller;
  signal?: AbortSignal;
  /** Reports progress to a client that asked for it (a long index_path); a no-op otherwise. */
  progress(done: number, total?: number, message?: string): void;
}

export interface ToolDef {
  name: string;
  title: string;
  description: string;
  args: Record<string, z.ZodType<unknown>>;
  required?: readonly string[];
  annotations?: ToolAnnotations;
  run(args: ToolArgs, call: ToolCall): Promise<CallToolResult>;
}

export const textResult = (text: string): CallToolResult => ({ content: [{ type: 'text', text }] });
export const jsonResult = (value: unknown): CallToolResult => textResult(JSON.stringify(value, null, 2));

/** The `collection` argument, required unless the host has a default collection. */
export function collectionArg(host: McpHost) {
  const fallback = host.defaultCollection ? ` (default ${JSON.stringify(host.defaultCollection)})` : '';
  return arg(z.string(), `The collection's name, as list_collections gives it${fallback}.`);
}

export function collectionRequired(host: McpHost): string[] {
  return host.defaultCollection ? [] : ['collection'];
}

/** The named (or default) collection of the store: COLLECTION_NAME_INVALID, COLLECTION_NOT_FOUND. */
export async function collectionOf(store: VectorStore, args: ToolArgs, host: McpHost): Promise<CollectionDescriptor> {
  const given = args.collection ?? host.defaultCollection;
  if (given === undefined || given === null) throw new TesseraError('REQUEST_INVALID', 'collection is required: the name of a collection (list_collections lists them)');
  return requireCollection(store, validateCollectionName(given, 'collection'));
}

/** A string argument that must be there (REQUEST_INVALID naming it otherwise). */
export function requiredString(args: ToolArgs, name: string, what: string): string {
  const value = args[name];
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TesseraError('REQUEST_INVALID', `${name} is required: ${what}${value === undefined ? '' : `, got ${JSON.stringify(value)?.slice(0, 60)}`}`);
  }
  return value;
}

/** An optional integer argument from `min` to `max` (INVALID_ARGUMENT naming it otherwise). */
export function optionalInteger(args: ToolArgs, name: string, min: number, max: number, fallback: number): number {
  const value = args[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TesseraError('INVALID_ARGUMENT', `${name}: expected an integer from ${min} to ${max} but received ${JSON.stringify(value)?.slice(0, 60)}`);
  }
  return value;
}

/** An optional boolean argument (INVALID_ARGUMENT naming it otherwise). */
export function optionalBoolean(args: ToolArgs, name: string, fallback: boolean): boolean {
  const value = args[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw new TesseraError('INVALID_ARGUMENT', `${name}: expected true or false but received ${JSON.stringify(value)?.slice(0, 60)}`);
  return value;
}

/** Arguments the tool does not take are an error, as unknown fields are over HTTP ("top_k" is not silently ignored). */
function checkKnown(tool: ToolDef, args: ToolArgs): void {
  const unknown = Object.keys(args).filter((name) => !(name in tool.args));
  if (unknown.length > 0) {
    const known = Object.keys(tool.args);
    throw new TesseraError('REQUEST_INVALID', `unknown argument ${JSON.stringify(unknown[0])}; ${tool.name} takes ${known.length > 0 ? known.join(', ') : 'no arguments'}`);
  }
}

/** Runs a tool: a TesseraError becomes "CODE: message"; anything else the host's word on it. */
export async function runTool(tool: ToolDef, args: ToolArgs, call: ToolCall): Promise<CallToolResult> {
  try {
    checkKnown(tool, args);
    return await tool.run(args, call);
  } catch (err) {
    call.caller.failed?.();
    const text = err instanceof TesseraError ? `${err.code}: ${err.message}` : `INTERNAL_ERROR: ${call.host.internalError(err)}`;
    return { isError: true, content: [{ type: 'text', text }] };
  }
}
