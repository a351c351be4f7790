/**
 * A few-shot task for the colour model ("demo") whose labels are not colour words: "warm" for
 * red, orange and yellow, "cool" for blue, green and purple. Zero-shot can only guess (the
 * model has no words for warm or cool); a classifier learns it from a few examples. Items are
 * texts naming the colour and solid images of shades near it, seeded, so every run sees the
 * same items.
 */
import sharp from 'sharp';
import { COLOURS } from '../forge/colour.ts';
import { xorshift32 } from '../random.ts';

export const WARM_COOL: Readonly<Record<'warm' | 'cool', readonly string[]>> = {
  warm: ['red', 'orange', 'yellow'],
  cool: ['blue', 'green', 'purple'],
};

export interface LabelledItem {
  /** Exactly one of text and image (base64 PNG). */
  text?: string;
  image?: string;
  label: 'warm' | 'cool';
  colour: string;
}

/** Training items and held-out items never share a sentence. */
const TEMPLATES = {
  train: ['a {c} car', 'the door is painted {c}', '{c}', 'a bright {c} balloon'],
  heldOut: ['my shirt is {c}', 'a {c} flower in the garden', 'the {c} one', 'deep {c} paint'],
} as const;

export type Split = keyof typeof TEMPLATES;

/**
 * `perColour` items of each of the six colours, alternating text and image, interleaved so
 * that any prefix of a class's items covers its colours in turn (red, orange, yellow, red, ...).
 * Texts of the `train` and `heldOut` splits come from different sentences; images are shades
 * drawn from `seed`, so use different seeds for training and held-out items.
 */
export async function warmCoolItems(seed: number, perColour: number, split: Split = 'train'): Promise<LabelledItem[]> {
  const templates = TEMPLATES[split];
  const random = xorshift32(seed * 2654435761);
  const out: LabelledItem[] = [];
  for (let i = 0; i < perColour; i++) {
    for (const label of ['warm', 'cool'] as const) {
      for (const name of WARM_COOL[label]) {
        const colour = COLOURS.find((c) => c.name === name)!;
        if ((i + out.length) % 2 === 0) {
          const template = templates[Math.floor(random() * templates.length)]!;
          out.push({ text: template.replace('{c}', name), label, colour: name });
        } else {
          const jitter = (v: number) => Math.max(0, Math.min(255, Math.round(v + (random() - 0.5) * 40)));
          const rgb = colour.rgb.map(jitter) as [number, number, number];
          const size = 32 + Math.floor(random() * 64);
          const png = await sharp({ create: { width: size, height: size, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
          out.push({ image: png.toString('base64'), label, colour: name });
        }
      }
    }
  }
  return out;
}

/**
 * The first `n` items of each label from `items`, in the interleaved order (red, blue,
 * orange, green, ...): with n = 1 a class has seen one of its colours, with n = 3 all three.
 */
export function firstPerLabel(items: readonly LabelledItem[], n: number): LabelledItem[] {
  const taken = { warm: 0, cool: 0 };
  const byLabel = { warm: items.filter((x) => x.label === 'warm'), cool: items.filter((x) => x.label === 'cool') };
  const out: LabelledItem[] = [];
  for (let i = 0; i < n; i++) {
    for (const label of ['warm', 'cool'] as const) {
      const item = byLabel[label][taken[label]++];
      if (item) out.push(item);
    }
  }
  return out;
}
