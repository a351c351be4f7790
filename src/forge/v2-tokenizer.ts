/**
 * The tokenizer files of an XLM-RoBERTa SentencePiece Unigram model, as jina-clip-v2 ships
 * them: tokenizer.json (Hugging Face tokenizers format), tokenizer_config.json
 * (XLMRobertaTokenizer) and special_tokens_map.json.
 */
import { V2_MASK_TOKEN, V2_SPECIAL_TOKENS, WORD_START, type ScoredPiece } from './v2-vocab.ts';

/** XLM-RoBERTa's 8192 positions plus the two its position ids skip (jina-embeddings-v3's max_position_embeddings). */
export const V2_MODEL_MAX_LENGTH = 8194;

export interface V2TokenizerFiles {
  'tokenizer.json': unknown;
  'tokenizer_config.json': unknown;
  'special_tokens_map.json': unknown;
}

export function v2TokenizerFiles(vocab: readonly ScoredPiece[]): V2TokenizerFiles {
  for (const { token, id } of Object.values(V2_SPECIAL_TOKENS)) {
    if (vocab[id]?.[0] !== token) throw new Error(`vocabulary has ${vocab[id]?.[0]} at id ${id}, expected ${token}`);
  }
  const maskId = vocab.length - 1;
  if (vocab[maskId]![0] !== V2_MASK_TOKEN) throw new Error(`the last piece must be ${V2_MASK_TOKEN}`);
  const { bos, pad, eos, unk } = V2_SPECIAL_TOKENS;
  // XLM-RoBERTa's <mask> swallows the space before it (lstrip), so "a <mask>" masks the word.
  const specials = [
    { token: bos.token, id: bos.id, lstrip: false },
    { token: pad.token, id: pad.id, lstrip: false },
    { token: eos.token, id: eos.id, lstrip: false },
    { token: unk.token, id: unk.id, lstrip: false },
    { token: V2_MASK_TOKEN, id: maskId, lstrip: true },
  ];
  const metaspace = { type: 'Metaspace', replacement: WORD_START, prepend_scheme: 'always', split: true };

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map(({ token, id, lstrip }) => ({ id, content: token, single_word: false, lstrip, rstrip: false, normalized: false, special: true })),
    // The hub's XLM-RoBERTa normalizer is SentencePiece's nmt_nfkc as a Precompiled charsmap
    // (a binary trie built by SentencePiece's trainer), then runs of spaces to one. A forged
    // charsmap would mean nothing: the JS implementation (@huggingface/tokenizers, which
    // tessera and transformers.js 4.x share) ignores it and applies fixed rules, while the
    // Rust library would parse it. NFKC is the core of nmt_nfkc and is implemented the
    // same way by both (and by Python's), so every reader of this file normalises alike.
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }],
    },
    pre_tokenizer: metaspace,
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: bos.token, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: eos.token, type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: bos.token, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: eos.token, type_id: 0 } },
        { SpecialToken: { id: eos.token, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: eos.token, type_id: 0 } },
      ],
      special_tokens: {
        [bos.token]: { id: bos.token, ids: [bos.id], tokens: [bos.token] },
        [eos.token]: { id: eos.token, ids: [eos.id], tokens: [eos.token] },
      },
    },
    decoder: metaspace,
    model: { type: 'Unigram', unk_id: unk.id, vocab, byte_fallback: false },
  };

  const specialTokensMap = {
    bos_token: bos.token,
    cls_token: bos.token,
    eos_token: eos.token,
    mask_token: { content: V2_MASK_TOKEN, lstrip: true, normalized: false, rstrip: false, single_word: false },
    pad_token: pad.token,
    sep_token: eos.token,
    unk_token: unk.token,
  };
  const tokenizerConfig = {
    added_tokens_decoder: Object.fromEntries(
      specials.map(({ token, id, lstrip }) => [String(id), { content: token, lstrip, normalized: false, rstrip: false, single_word: false, special: true }]),
    ),
    bos_token: bos.token,
    clean_up_tokenization_spaces: true,
    cls_token: bos.token,
    eos_token: eos.token,
    mask_token: V2_MASK_TOKEN,
    model_max_length: V2_MODEL_MAX_LENGTH,
    pad_token: pad.token,
    sep_token: eos.token,
    tokenizer_class: 'XLMRobertaTokenizer',
    unk_token: unk.token,
  };
  return { 'tokenizer.json': tokenizerJson, 'tokenizer_config.json': tokenizerConfig, 'special_tokens_map.json': specialTokensMap };
}
