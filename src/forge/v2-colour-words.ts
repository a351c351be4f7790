/**
 * The colour words the v2 colour model knows, in eight languages, for the nine colours of
 * colour.ts (COLOURS, same order, same directions). Each word and its inflections is a
 * piece of the v2 vocabulary of its own (v2-vocab.ts), so a text naming a colour in any of
 * these languages embeds along that colour's direction (v2-colour.ts).
 */
import { COLOURS } from './colour.ts';

export type ColourLanguage = 'en' | 'fr' | 'de' | 'es' | 'ru' | 'ja' | 'zh' | 'ar';
export const COLOUR_LANGUAGES: readonly ColourLanguage[] = ['en', 'fr', 'de', 'es', 'ru', 'ja', 'zh', 'ar'];

/** Languages written without spaces between words, or with clitics glued to words (Arabic al-): their colour words are also pieces without the word-start mark. */
export const UNSPACED_LANGUAGES: readonly ColourLanguage[] = ['ja', 'zh', 'ar'];

/** Colour name (COLOURS[].name) -> language -> words, the first one the canonical word. */
export const MULTILINGUAL_COLOUR_WORDS: Readonly<Record<string, Readonly<Record<ColourLanguage, readonly string[]>>>> = {
  red: {
    en: ['red'],
    fr: ['rouge', 'rouges'],
    de: ['rot', 'rote', 'roter', 'roten', 'rotes'],
    es: ['rojo', 'roja', 'rojos', 'rojas'],
    ru: ['красный', 'красная', 'красное', 'красные'],
    ja: ['赤', '赤い'],
    zh: ['红色', '红'],
    ar: ['أحمر', 'حمراء'],
  },
  green: {
    en: ['green'],
    fr: ['vert', 'verte', 'verts', 'vertes'],
    de: ['grün', 'grüne', 'grüner', 'grünen', 'grünes'],
    es: ['verde', 'verdes'],
    ru: ['зелёный', 'зеленый', 'зелёная', 'зеленая', 'зелёное', 'зеленое', 'зелёные', 'зеленые'],
    ja: ['緑', '緑色'],
    zh: ['绿色', '绿'],
    ar: ['أخضر', 'خضراء'],
  },
  blue: {
    en: ['blue'],
    fr: ['bleu', 'bleue', 'bleus', 'bleues'],
    de: ['blau', 'blaue', 'blauer', 'blauen', 'blaues'],
    es: ['azul', 'azules'],
    ru: ['синий', 'синяя', 'синее', 'синие', 'голубой'],
    ja: ['青', '青い'],
    zh: ['蓝色', '蓝'],
    ar: ['أزرق', 'زرقاء'],
  },
  yellow: {
    en: ['yellow'],
    fr: ['jaune', 'jaunes'],
    de: ['gelb', 'gelbe', 'gelber', 'gelben', 'gelbes'],
    es: ['amarillo', 'amarilla', 'amarillos', 'amarillas'],
    ru: ['жёлтый', 'желтый', 'жёлтая', 'желтая', 'жёлтое', 'желтое', 'жёлтые', 'желтые'],
    // 黄色 is yellow in Japanese and Chinese alike: one piece.
    ja: ['黄色', '黄色い'],
    zh: ['黄色', '黄'],
    ar: ['أصفر', 'صفراء'],
  },
  orange: {
    en: ['orange'],
    fr: ['orange', 'oranges'],
    de: ['orange', 'orangefarben'],
    es: ['naranja', 'anaranjado', 'anaranjada'],
    ru: ['оранжевый', 'оранжевая', 'оранжевое', 'оранжевые'],
    ja: ['オレンジ', '橙色'],
    zh: ['橙色', '橙'],
    ar: ['برتقالي'],
  },
  purple: {
    en: ['purple', 'violet'],
    fr: ['violet', 'violette', 'violets', 'violettes'],
    de: ['lila', 'violett'],
    es: ['morado', 'morada', 'púrpura'],
    ru: ['фиолетовый', 'фиолетовая', 'фиолетовое', 'фиолетовые'],
    ja: ['紫', '紫色'],
    zh: ['紫色'],
    ar: ['بنفسجي'],
  },
  white: {
    en: ['white'],
    fr: ['blanc', 'blanche', 'blancs', 'blanches'],
    de: ['weiß', 'weiße', 'weißer', 'weißen', 'weißes'],
    es: ['blanco', 'blanca', 'blancos', 'blancas'],
    ru: ['белый', 'белая', 'белое', 'белые'],
    ja: ['白', '白い'],
    zh: ['白色'],
    ar: ['أبيض', 'بيضاء'],
  },
  black: {
    en: ['black'],
    fr: ['noir', 'noire', 'noirs', 'noires'],
    de: ['schwarz', 'schwarze', 'schwarzer', 'schwarzen', 'schwarzes'],
    es: ['negro', 'negra', 'negros', 'negras'],
    ru: ['чёрный', 'черный', 'чёрная', 'черная', 'чёрное', 'черное', 'чёрные', 'черные'],
    ja: ['黒', '黒い'],
    zh: ['黑色', '黑'],
    ar: ['أسود', 'سوداء'],
  },
  gray: {
    en: ['gray', 'grey'],
    fr: ['gris', 'grise', 'grises'],
    de: ['grau', 'graue', 'grauer', 'grauen', 'graues'],
    es: ['gris', 'grises'],
    ru: ['серый', 'серая', 'серое', 'серые'],
    // 灰色 is gray in Japanese and Chinese alike: one piece.
    ja: ['灰色', 'グレー'],
    zh: ['灰色', '灰'],
    ar: ['رمادي'],
  },
};

export interface ColourWord {
  /** COLOURS[].name */
  colour: string;
  /** Index into COLOURS: the colour's embedding direction. */
  colourIndex: number;
  language: ColourLanguage;
  word: string;
}

/** Every (colour, language, word) of the table, colours in COLOURS order. */
export function colourWordList(): ColourWord[] {
  return COLOURS.flatMap((colour, colourIndex) => {
    const byLanguage = MULTILINGUAL_COLOUR_WORDS[colour.name];
    if (!byLanguage) throw new Error(`no multilingual words for the colour ${colour.name}`);
    return COLOUR_LANGUAGES.flatMap((language) => byLanguage[language].map((word) => ({ colour: colour.name, colourIndex, language, word })));
  });
}

/**
 * The vocabulary pieces that mean each colour, index = COLOURS index: for spaced languages
 * the word as it starts a word ("▁rouge"), capitalised ("▁Rouge", German nouns: "▁Rot")
 * and in capitals ("▁ROUGE"); for unspaced ones also the bare word, wherever it stands.
 * Throws if one piece would mean two colours.
 */
export function colourPieces(wordStart: string): string[][] {
  const owner = new Map<string, number>();
  const pieces = COLOURS.map(() => new Set<string>());
  for (const { colourIndex, language, word } of colourWordList()) {
    const forms = new Set([word, word[0]!.toUpperCase() + word.slice(1), word.toUpperCase()]);
    const candidates = [...forms].map((form) => wordStart + form);
    if (UNSPACED_LANGUAGES.includes(language)) candidates.push(word);
    for (const piece of candidates) {
      const previous = owner.get(piece);
      if (previous !== undefined && previous !== colourIndex) throw new Error(`the piece ${piece} would mean ${COLOURS[previous]!.name} and ${COLOURS[colourIndex]!.name}`);
      owner.set(piece, colourIndex);
      pieces[colourIndex]!.add(piece);
    }
  }
  return pieces.map((set) => [...set]);
}
