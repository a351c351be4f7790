/**
 * The tokenizer files of a BERT-uncased WordPiece model, as jina-clip-v1 ships them:
 * tokenizer.json (Hugging Face tokenizers format), tokenizer_config.json,
 * special_tokens_map.json and vocab.txt.
 */
import { SPECIAL_TOKENS } from './vocab.ts';

export const MODEL_MAX_LENGTH = 8192;

export interface TokenizerFiles {
  'tokenizer.json': unknown;
  'tokenizer_config.json': unknown;
  'special_tokens_map.json': unknown;
  'vocab.txt': string;
}

export function tokenizerFiles(vocab: readonly string[]): TokenizerFiles {
  for (const { token, id } of Object.values(SPECIAL_TOKENS)) {
    if (vocab[id] !== token) throw new Error(`vocabulary has ${vocab[id]} at id ${id}, expected ${token}`);
  }
  const { pad, unk, cls, sep, mask } = SPECIAL_TOKENS;
  const specials = [pad, unk, cls, sep, mask];

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map(({ token, id }) => ({
      id,
      content: token,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    // strip_accents null: follow `lowercase`, as bert-base-uncased's tokenizer.json does.
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: cls.token, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: sep.token, type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: cls.token, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: sep.token, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: sep.token, type_id: 1 } },
      ],
      special_tokens: {
        [cls.token]: { id: cls.token, ids: [cls.id], tokens: [cls.token] },
        [sep.token]: { id: sep.token, ids: [sep.id], tokens: [sep.token] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: unk.token,
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((token, id) => [token, id])),
    },
  };

  const specialTokensMap = {
    cls_token: cls.token,
    mask_token: mask.token,
    pad_token: pad.token,
    sep_token: sep.token,
    unk_token: unk.token,
  };

  const tokenizerConfig = {
    added_tokens_decoder: Object.fromEntries(
      specials.map(({ token, id }) => [
        String(id),
        { content: token, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    clean_up_tokenization_spaces: true,
    do_basic_tokenize: true,
    do_lower_case: true,
    model_max_length: MODEL_MAX_LENGTH,
    never_split: null,
    strip_accents: null,
    tokenize_chinese_chars: true,
    tokenizer_class: 'BertTokenizer',
    ...specialTokensMap,
  };

  return {
    'tokenizer.json': tokenizerJson,
    'tokenizer_config.json': tokenizerConfig,
    'special_tokens_map.json': specialTokensMap,
    'vocab.txt': `${vocab.join('\n')}\n`,
  };
}
