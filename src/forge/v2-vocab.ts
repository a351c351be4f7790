/**
 * An XLM-RoBERTa-shaped SentencePiece Unigram vocabulary for the v2 presets: pieces with
 * log-probability scores, `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>` the last id.
 * "▁" (U+2581) marks the start of a word, as the Metaspace pre-tokenizer writes spaces.
 *
 * What it holds, in this order: the word-start mark, punctuation and digits, single
 * characters of Latin (with accents), Greek, Cyrillic, Arabic, Hebrew, Devanagari, Thai,
 * kana, CJK, Hangul and emoji (common ones for `common`, whole Unicode blocks for `full`),
 * whole-word pieces of English, French, German, Spanish, Russian, Arabic, Japanese and
 * Chinese (the colour words of v2-colour-words.ts among them), suffix pieces, then
 * generated Latin syllable pieces up to the wanted size. The same size and scripts always
 * give the same vocabulary, whatever the model seed.
 *
 * Scores decide the Unigram segmentation (the most probable path): whole words score
 * highest, then suffixes, then single characters, then the generated pieces, so a known
 * word is always one piece and never split by generated ones.
 */
import { mulberry32 } from './random.ts';
import { colourPieces } from './v2-colour-words.ts';
import { englishWords } from './vocab.ts';

export const WORD_START = '\u2581';

export const V2_SPECIAL_TOKENS = {
  bos: { token: '<s>', id: 0 },
  pad: { token: '<pad>', id: 1 },
  eos: { token: '</s>', id: 2 },
  unk: { token: '<unk>', id: 3 },
} as const;
export const V2_MASK_TOKEN = '<mask>';

/** [piece, score], index = token id: tokenizer.json's Unigram `vocab`. */
export type ScoredPiece = [string, number];

const SCORE = { special: 0, wordStart: -2, word: -5, suffix: -7, char: -9, generated: -10 } as const;

const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => String.fromCodePoint(from + i));
const chars = (text: string): string[] => [...text.replace(/\s+/g, '')];

const PUNCTUATION = chars('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»–—‘’“”·•€£¥©®°±×÷、。「」『』・〜؟،');
const DIGITS = chars('0123456789٠١٢٣٤٥٦٧٨٩');

function scriptCharacters(scripts: 'common' | 'full'): string[] {
  const latin = [...range(0x41, 0x5a), ...range(0x61, 0x7a), ...range(0xc0, 0xff), ...range(0x100, 0x17f)];
  const greek = [...range(0x391, 0x3a9), ...range(0x3b1, 0x3c9)];
  const cyrillic = [...range(0x400, 0x45f)];
  const arabic = [...range(0x621, 0x64a), ...range(0x64b, 0x652), ...chars('پچژگکی')];
  const hebrew = range(0x5d0, 0x5ea);
  const devanagari = [...range(0x905, 0x939), ...range(0x93e, 0x94d)];
  const thai = [...range(0xe01, 0xe3a), ...range(0xe40, 0xe4e)];
  const kana = [...range(0x3041, 0x3096), ...range(0x30a1, 0x30fa), 'ー'];
  const emojiModifiers = [...range(0x1f3fb, 0x1f3ff), '\u200d', '\ufe0f'];
  const wide =
    scripts === 'full'
      ? [...range(0x4e00, 0x9fff), ...range(0x3400, 0x4dbf), ...range(0xac00, 0xd7a3), ...range(0x1f300, 0x1f64f), ...range(0x1f680, 0x1f6ff), ...range(0x1f900, 0x1f9ff), ...range(0x2600, 0x27bf)]
      : [...chars(COMMON_HANZI), ...chars(COMMON_HANGUL), ...chars(COMMON_EMOJI)];
  return [...latin, ...greek, ...cyrillic, ...arabic, ...hebrew, ...devanagari, ...thai, ...kana, ...wide, ...emojiModifiers];
}

/** Whole-word pieces: spaced languages as word starts (lower case and capitalised); unspaced ones, and Arabic (whose article al- is written joined), bare and as word starts. */
function wordPieces(): string[] {
  const spaced = [...englishWords(), ...WORDS.en, ...WORDS.fr, ...WORDS.de, ...WORDS.es, ...WORDS.ru].flatMap((w) => [
    WORD_START + w,
    WORD_START + w[0]!.toUpperCase() + w.slice(1),
  ]);
  const unspaced = [...WORDS.ja, ...WORDS.zh, ...WORDS.ar].flatMap((w) => [w, WORD_START + w]);
  return [...colourPieces(WORD_START).flat(), ...spaced, ...unspaced];
}

/** The vocabulary of `size` pieces (`<mask>` last). */
export function buildV2Vocab(size: number, scripts: 'common' | 'full'): ScoredPiece[] {
  const pieces: ScoredPiece[] = Object.values(V2_SPECIAL_TOKENS).map(({ token }) => [token, SCORE.special]);
  const seen = new Set<string>([...pieces.map(([p]) => p), V2_MASK_TOKEN]);
  const add = (piece: string, score: number): void => {
    if (seen.has(piece)) return;
    seen.add(piece);
    pieces.push([piece, score]);
  };
  add(WORD_START, SCORE.wordStart);
  // A character the NFKC normaliser rewrites ("ª" -> "a", "µ" -> "μ", "…" -> "...") could never be matched.
  for (const c of [...PUNCTUATION, ...DIGITS, ...scriptCharacters(scripts)]) if (c.normalize('NFKC') === c) add(c, SCORE.char);
  const words = wordPieces().map((w) => w.normalize('NFKC'));
  // Every character of a known word is a piece too, so no script the words use falls to <unk>.
  for (const c of words.flatMap((w) => [...w])) add(c, SCORE.char);
  for (const w of words) add(w, SCORE.word);
  for (const s of SUFFIXES.split(/\s+/)) if (s) add(s, SCORE.suffix);
  const base = pieces.length;
  if (size < base + 1) throw new Error(`a v2 vocabulary with ${scripts} scripts needs at least ${base + 1} pieces, asked for ${size}`);

  const syllables = ONSETS.flatMap((onset) => VOWELS.flatMap((vowel) => CODAS.map((coda) => onset + vowel + coda)));
  // A fixed stream, so the vocabulary does not depend on the model seed.
  const random = mulberry32(0x5eed2);
  const wanted = size - 1;
  let attempts = 0;
  while (pieces.length < wanted) {
    if (++attempts > size * 50) throw new Error(`could not generate ${size} distinct vocabulary pieces`);
    const syllableCount = 1 + Math.floor(random() * 3);
    let piece = '';
    for (let k = 0; k < syllableCount; k++) piece += syllables[Math.floor(random() * syllables.length)]!;
    // Scores from -10 down to -11 in generation order: rarer pieces later, as SentencePiece sorts them.
    add(random() < 0.6 ? WORD_START + piece : piece, SCORE.generated - (pieces.length - base) / Math.max(1, wanted - base));
  }
  pieces.push([V2_MASK_TOKEN, SCORE.special]);
  return pieces;
}

const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'cr', 'dr', 'fl', 'gr', 'pl', 'pr', 'sh', 'st', 'th', 'tr', 'ch', 'qu', 'x'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou', 'ie', 'y'];
const CODAS = ['', 'n', 'r', 's', 't', 'l', 'm', 'nd', 'st', 'ck', 'ng'];

const SUFFIXES = `s es ed ing er ers est ly ness ment tion sion able ful less ous ive al ic ity ize ise y en
e n t r ung ungen heit keit lich isch ig te ten ité eur euse ción ciones mente dad ado ada
а я ы и е о у ю ой ий ая ое ые ого ому ом ых ами ть ся い た て です ます 的 了`;

/** A few words per language beyond the colours (the task instruction's words among the English ones). */
const WORDS = {
  en: `represent query retrieving retrieval evidence documents document passage passages photo photograph picture
  image images car cars dog dogs cat cats house street city sky sea beach flower flowers apple apples tree trees`.split(/\s+/).filter(Boolean),
  fr: `le la les un une des de du et est dans sur avec pour pas que qui il elle nous vous ils sont voiture maison chat
  chien pomme fleur ciel mer soleil photo image arbre rue ville homme femme enfant bonjour merci très grand petit
  beau belle`.split(/\s+/).filter(Boolean),
  de: `der die das ein eine und ist in auf mit für nicht ich du wir sie es auto haus katze hund apfel blume himmel meer
  sonne foto bild baum straße stadt mann frau kind hallo danke sehr groß klein schön`.split(/\s+/).filter(Boolean),
  es: `el la los las un una y es en con para no que de del coche casa gato perro manzana flor cielo mar sol foto
  imagen árbol calle ciudad hombre mujer niño hola gracias muy grande pequeño bonito`.split(/\s+/).filter(Boolean),
  ru: `и в на с не что это как я ты мы он она они машина дом кошка собака яблоко цветок небо море солнце фото дерево
  улица город мужчина женщина ребёнок привет спасибо очень большой маленький красивый`.split(/\s+/).filter(Boolean),
  ar: `في من على إلى و هذا هذه سيارة بيت قطة كلب تفاحة زهرة سماء بحر شمس صورة شجرة شارع مدينة رجل امرأة طفل مرحبا
  شكرا كبير صغير جميل ال`.split(/\s+/).filter(Boolean),
  ja: `車 家 猫 犬 りんご 花 空 海 太陽 写真 木 道 町 男 女 子供 こんにちは ありがとう です ます の は が を に と
  大きい 小さい 美しい 日本 東京`.split(/\s+/).filter(Boolean),
  zh: `汽车 房子 猫 狗 苹果 花 天空 大海 太阳 照片 树 街道 城市 男人 女人 孩子 你好 谢谢 是 的 很 大 小 美丽 我 你 他
  中国 北京`.split(/\s+/).filter(Boolean),
};

/** About 700 of the most frequent Chinese characters and Japanese kanji (a small model's `common` set). */
const COMMON_HANZI = `
的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天
如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知使点动手高本已长月文意明外实力加正
水合气全表问西东北南山川海花草木树鸟鱼马牛羊狗猫车路门房屋城市街店书字语话写读听吃喝饭茶酒米肉菜果苹香色光电脑机
红绿蓝黄白黑灰紫橙粉棕金银赤青緑黒真電駅東京本私僕彼女男供美愛春夏秋冬雨雪風雲星空朝昼夜今週時分秒止停前後左右
开关问题回最新老师朋友工作学校医院公司名字现在因为所以但是如果没有已经可以知道觉得喜欢希望需要应该一起比较非常
四五六七八九百千万元块钱买卖给让被把跟向往从每些什怎哪谁几多少太真很更最再也还又都只就才刚正在着过了吗呢吧啊
走跑站坐睡起来去进出上下开关放拿送找等想看见听说读写学教问答做用打玩唱跳笑哭爱恨怕急忙累病死活住生长变
山水火土石田林森河湖江海岛天地日月星云风雨雪电光影声音色形体头手足口目耳鼻心身面肉血骨衣服鞋帽包伞笔纸
東西南北駅道路橋港空港電話番号会社学校先生友達家族父母兄弟姉妹子供赤ちゃん猫犬鳥魚花木森山川海島町村市県国
語言葉文字漢字平仮名片仮名読書音楽映画写真絵旅行料理食事朝昼晩御飯茶酒水氷湯雨雪晴曇天気温暑寒涼暖新古高安
`;
const COMMON_HANGUL = '가나다라마바사아자차카타파하한국어는을를이가에의도와과고서요니다습니까안녕하세요감사합빨강초록파랑노랑하얀검은색';
const COMMON_EMOJI = '😀😃😄😁😆😅😂🤣😊😇🙂😉😍😘😋😎🤔😐😴😢😭😡👍👎👏🙏💪👋❤💔💯🔥⭐🌟✨🎉🎂🍎🍌🍕☕🍺🚗🚲✈🏠🌳🌸🌹🌈☀🌙⚡❄🐶🐱🐟🐦🔴🟢🔵🟡🟠🟣⚪⚫🟤';
