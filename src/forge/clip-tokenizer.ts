/**
 * A small byte-level BPE tokenizer in OpenAI CLIP's shape, as the hub ships it
 * (openai/clip-vit-base-patch16, Xenova/clip-vit-base-patch16): tokenizer.json (Hugging Face
 * tokenizers format), tokenizer_config.json, special_tokens_map.json, and the slow
 * tokenizer's vocab.json and merges.txt.
 *
 * Layout of the vocabulary, as CLIP's: the 256 byte symbols in GPT-2's bytes_to_unicode order,
 * the same 256 with the end-of-word suffix `</w>`, one token per merge, then
 * <|startoftext|> and <|endoftext|> as the last two ids (so the EOS is the largest id in any
 * sequence, which CLIP's argmax pooling relies on). The merges are learned here, by plain BPE
 * over a fixed word list, so the same size always gives the same tokenizer.
 */
import { baseTokens } from './vocab.ts';

export const CLIP_MODEL_MAX_LENGTH = 77;
export const CLIP_BOS = '<|startoftext|>';
export const CLIP_EOS = '<|endoftext|>';
const END_OF_WORD = '</w>';

/** CLIP's pre-tokenizer pattern (its tokenizer.json Split, behaviour Removed, inverted). */
const CLIP_SPLIT_PATTERN = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 onwards, in that order. */
export function bytesToUnicode(): Array<[number, string]> {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const pairs: Array<[number, string]> = printable.map((b) => [b, String.fromCharCode(b)]);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) pairs.push([b, String.fromCharCode(256 + extra++)]);
  }
  return pairs;
}

export interface ClipBpe {
  /** Index = token id. */
  vocab: string[];
  /** "left right", in rank order. */
  merges: string[];
  bosId: number;
  eosId: number;
}

/** The words BPE is trained on: the forge's English word list (colour words included). */
function trainingWords(): string[] {
  return baseTokens().filter((t) => /^[a-z]{2,}$/.test(t));
}

/**
 * Learns `mergeCount` merges (fewer if the words run out of pairs): each step merges the most
 * frequent adjacent pair, ties broken by the pair's text, so the result is deterministic.
 */
export function buildClipBpe(mergeCount: number): ClipBpe {
  const bytes = bytesToUnicode().map(([, symbol]) => symbol);
  const vocab = [...bytes, ...bytes.map((s) => s + END_OF_WORD)];
  const words = trainingWords().map((w) => {
    const symbols = [...w];
    symbols[symbols.length - 1] += END_OF_WORD;
    return symbols;
  });
  const merges: string[] = [];
  while (merges.length < mergeCount) {
    const counts = new Map<string, number>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.length; i++) {
        const key = `${word[i]} ${word[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, count] of counts) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split(' ') as [string, string];
    merges.push(best);
    vocab.push(left + right);
    for (const word of words) {
      for (let i = 0; i + 1 < word.length; i++) {
        if (word[i] === left && word[i + 1] === right) word.splice(i, 2, left + right);
      }
    }
  }
  vocab.push(CLIP_BOS, CLIP_EOS);
  return { vocab, merges, bosId: vocab.length - 2, eosId: vocab.length - 1 };
}

export interface ClipTokenizerFiles {
  'tokenizer.json': unknown;
  'tokenizer_config.json': unknown;
  'special_tokens_map.json': unknown;
  'vocab.json': unknown;
  'merges.txt': string;
}

export function clipTokenizerFiles(bpe: ClipBpe): ClipTokenizerFiles {
  const vocabMap = Object.fromEntries(bpe.vocab.map((token, id) => [token, id]));
  const added = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(CLIP_BOS, bpe.bosId), added(CLIP_EOS, bpe.eosId)],
    // CLIP's text cleanup: NFC (ftfy's fix_text in the original), whitespace runs to one space, lower case.
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT_PATTERN }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: CLIP_BOS, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: CLIP_EOS, type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: CLIP_BOS, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: CLIP_EOS, type_id: 0 } },
        { SpecialToken: { id: CLIP_EOS, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: CLIP_EOS, type_id: 0 } },
      ],
      special_tokens: {
        [CLIP_BOS]: { id: CLIP_BOS, ids: [bpe.bosId], tokens: [CLIP_BOS] },
        [CLIP_EOS]: { id: CLIP_EOS, ids: [bpe.eosId], tokens: [CLIP_EOS] },
      },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: CLIP_EOS,
      continuing_subword_prefix: '',
      end_of_word_suffix: END_OF_WORD,
      fuse_unk: false,
      byte_fallback: false,
      vocab: vocabMap,
      merges: bpe.merges,
    },
  };
  const specialTokensMap = { bos_token: CLIP_BOS, eos_token: CLIP_EOS, pad_token: CLIP_EOS, unk_token: CLIP_EOS };
  const tokenizerConfig = {
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      [[bpe.bosId, CLIP_BOS], [bpe.eosId, CLIP_EOS]].map(([id, content]) => [
        String(id),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    errors: 'replace',
    model_max_length: CLIP_MODEL_MAX_LENGTH,
    tokenizer_class: 'CLIPTokenizer',
    ...specialTokensMap,
  };
  return {
    'tokenizer.json': tokenizerJson,
    'tokenizer_config.json': tokenizerConfig,
    'special_tokens_map.json': specialTokensMap,
    'vocab.json': vocabMap,
    'merges.txt': `#version: 0.2\n${bpe.merges.join('\n')}\n`,
  };
}
