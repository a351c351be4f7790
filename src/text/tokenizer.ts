import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { TesseraError } from '../errors.ts';
import { readJsonFile } from '../model/files.ts';

export interface TokenizedText {
  ids: number[];
  /** Tokens the model sees, special tokens included: what the server bills. */
  tokenCount: number;
  /** True when the tail was dropped to fit the model's limit. */
  truncated: boolean;
}

/**
 * Wraps a tokenizer.json with the model's length limit. Truncation keeps the template's
 * special tokens ([CLS] ... [SEP]) and drops the tail of the content, as the Python
 * tokenizer does with `truncation=True`.
 */
export class TextTokenizer {
  readonly maxTokens: number;
  readonly padId: number;
  private readonly tokenizer: Tokenizer;
  private readonly prefix: number[];
  private readonly suffix: number[];

  private constructor(tokenizer: Tokenizer, maxTokens: number, padId: number) {
    this.tokenizer = tokenizer;
    this.maxTokens = maxTokens;
    this.padId = padId;
    // Find the special tokens the template adds around content, from one probe text.
    const withSpecials = tokenizer.encode('a').ids;
    const content = tokenizer.encode('a', { add_special_tokens: false }).ids;
    const start = withSpecials.indexOf(content[0]!);
    this.prefix = withSpecials.slice(0, start);
    this.suffix = withSpecials.slice(start + content.length);
  }

  static async load(dir: string, modelMaxTokens?: number): Promise<TextTokenizer> {
    const tokenizerJson = await readJsonFile(join(dir, 'tokenizer.json'));
    const config = (await readJsonFile(join(dir, 'tokenizer_config.json'))) as Record<string, unknown>;
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (err) {
      throw new TesseraError('MODEL_FILE_INVALID', `${join(dir, 'tokenizer.json')}: cannot build a tokenizer (${(err as Error).message})`, { cause: err });
    }
    const configured = Number(config.model_max_length);
    // Tokenizer configs without a limit carry a huge sentinel (1e30); the model's own limit wins then.
    const maxTokens = Number.isFinite(configured) && configured > 0 && configured < 1e9 ? configured : (modelMaxTokens ?? 512);
    // pad_token is a string or, as newer transformers save it, an AddedToken object. CLIP's is
    // <|endoftext|> (49407); with its causal mask and pooling at the first EOS, what follows
    // the EOS cannot change a result, but the id must at least exist.
    const padToken = tokenContent(config.pad_token) ?? '[PAD]';
    const padId = tokenizer.token_to_id(padToken) ?? tokenizer.token_to_id('[PAD]') ?? 0;
    return new TextTokenizer(tokenizer, Math.min(maxTokens, modelMaxTokens ?? maxTokens), padId);
  }

  /** Tokenize one text; over the limit it is truncated or rejected (TEXT_TOO_LONG). */
  encode(text: string, truncate: boolean): TokenizedText {
    if (typeof text !== 'string') {
      throw new TesseraError('TEXT_INVALID', `expected a string but received ${text === null ? 'null' : typeof text}`);
    }
    const content = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    const room = this.maxTokens - this.prefix.length - this.suffix.length;
    const total = content.length + this.prefix.length + this.suffix.length;
    if (content.length > room && !truncate) {
      throw new TesseraError('TEXT_TOO_LONG', `text has ${total} tokens but the model accepts at most ${this.maxTokens}; shorten it or set truncate to true`);
    }
    const kept = content.length > room ? content.slice(0, room) : content;
    const ids = [...this.prefix, ...kept, ...this.suffix];
    return { ids, tokenCount: ids.length, truncated: kept.length < content.length };
  }
}

/** A special token as tokenizer_config.json writes it: "tok" or {"content": "tok", ...}. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}
