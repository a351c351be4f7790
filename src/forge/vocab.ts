/**
 * A BERT-uncased-shaped WordPiece vocabulary: the special tokens at BERT's ids, single
 * characters, common English words (colour words among them), common suffix pieces, then
 * generated syllable pieces up to the wanted size. The same size always gives the same
 * vocabulary, whatever the model seed, and a smaller vocabulary is a prefix of a larger one.
 */
import { mulberry32 } from './random.ts';

export const SPECIAL_TOKENS = {
  pad: { token: '[PAD]', id: 0 },
  unk: { token: '[UNK]', id: 100 },
  cls: { token: '[CLS]', id: 101 },
  sep: { token: '[SEP]', id: 102 },
  mask: { token: '[MASK]', id: 103 },
} as const;

const PUNCTUATION = [...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'];
const DIGITS = [...'0123456789'];
const LETTERS = [...'abcdefghijklmnopqrstuvwxyz'];
// Unreachable after accent stripping, as in BERT's uncased vocabulary, but present.
const ACCENTED = [...'àáâäçèéêëìíîïñòóôöùúûüßæøå'];
const CJK = [...'中国日本人大小山水火天月'];

const COMMON_WORDS = `
the of and to a in is it you that he was for on are with as i his they be at one have this
from or had by hot word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number sound no
most people my over know water than call first who may down side been now find any new work
part take get place made live where after back little only round man year came show every
good me give our under name very through just form sentence great think say help low line
differ turn cause much mean before move right boy old too same tell does set three want air
well also play small end put home read hand port large spell add even land here must big
high such follow act why ask men change went light kind off need house picture try us again
animal point mother world near build self earth father head stand own page should country
found answer school grow study still learn plant cover food sun four between state keep eye
never last let thought city tree cross farm hard start might story saw far sea draw left late
run while press close night real life few north open seem together next begin got walk
example ease paper group always music those both mark often letter until mile river car feet
care second book carry took science eat room friend began idea fish mountain stop once base
hear horse cut sure watch color colour face wood main enough plain girl usual young ready
above ever list though feel talk bird soon body dog family direct pose leave song measure door
product short class wind question happen complete ship area half rock order fire south problem
piece told knew pass since top whole king space heard best hour better true during hundred
five remember step early hold west ground interest reach fast verb sing listen six table travel
less morning ten simple several toward war lay against pattern slow center love person money
serve appear road map rain rule govern pull cold notice voice unit power town fine certain fly
fall lead cry dark machine note wait plan figure star box noun field rest correct able pound
done beauty drive stood contain front teach week final gave green oh quick develop ocean warm
free minute strong special mind behind clear tail produce fact street inch multiply nothing
course stay wheel full force blue object decide surface deep moon island foot system busy test
record boat common gold possible plane stead dry wonder laugh thousand ago ran check game shape
equate miss brought heat snow tire bring yes distant fill east paint language among red yellow
orange purple white black gray grey brown pink violet photo image cat hello apple banana flower
sky grass shirt dress ball bag cup chair bed window garden beach forest street bright pale
cafe naive resume
`;

const SUFFIXES = `s es ed ing er est ly ness ment tion sion able ful less ous ive al ic ity ize ise y en ers
ings ist ism ate ant ent ence ance ship hood`;

const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'cr', 'dr', 'fl', 'gr', 'pl', 'pr', 'sh', 'st', 'th', 'tr', 'ch'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou'];
const CODAS = ['', 'n', 'r', 's', 't', 'l', 'm', 'nd', 'st', 'ck'];

/** The English word list of the vocabulary (the v2 vocabulary reuses it). */
export function englishWords(): string[] {
  return COMMON_WORDS.split(/\s+/).filter((word) => word !== '');
}

/** Tokens before the generated ones (the smallest vocabulary the forge makes). */
export function baseTokens(): string[] {
  const tokens: string[] = [];
  for (let id = 0; id < 104; id++) tokens.push(`[unused${id}]`);
  for (const special of Object.values(SPECIAL_TOKENS)) tokens[special.id] = special.token;
  // BERT numbers the 99 unused slots between [PAD] and [UNK] from 0.
  for (let id = 1; id < 100; id++) tokens[id] = `[unused${id - 1}]`;
  const seen = new Set(tokens);
  const add = (token: string): void => {
    if (!seen.has(token)) {
      seen.add(token);
      tokens.push(token);
    }
  };
  for (const c of [...PUNCTUATION, ...DIGITS, ...LETTERS, ...ACCENTED, ...CJK]) add(c);
  for (const c of [...DIGITS, ...LETTERS]) add(`##${c}`);
  for (const word of COMMON_WORDS.split(/\s+/)) if (word) add(word);
  for (const suffix of SUFFIXES.split(/\s+/)) if (suffix) add(`##${suffix}`);
  return tokens;
}

/** The vocabulary of `size` tokens; index = token id. */
export function buildVocab(size: number): string[] {
  const tokens = baseTokens();
  if (size < tokens.length) throw new Error(`a vocabulary needs at least ${tokens.length} tokens, asked for ${size}`);
  const seen = new Set(tokens);
  const syllables = ONSETS.flatMap((onset) => VOWELS.flatMap((vowel) => CODAS.map((coda) => onset + vowel + coda)));
  // A fixed stream, so the vocabulary does not depend on the model seed.
  const random = mulberry32(0x5eed);
  const pick = (): string => syllables[Math.floor(random() * syllables.length)]!;
  let attempts = 0;
  while (tokens.length < size) {
    if (++attempts > size * 50) throw new Error(`could not generate ${size} distinct vocabulary tokens`);
    const syllableCount = 1 + Math.floor(random() * 3);
    let piece = '';
    for (let k = 0; k < syllableCount; k++) piece += pick();
    const token = random() < 0.4 ? `##${piece}` : piece;
    if (!seen.has(token)) {
      seen.add(token);
      tokens.push(token);
    }
  }
  return tokens;
}
