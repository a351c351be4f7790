import { mean } from './metrics.ts';
import type { TaskFigures } from './tasks.ts';

/** One task's figures for one model, with what produced them. */
export type ModelResult = { model: string; dtype: string } & TaskFigures;

export type ColumnKey = 'text-text' | 'text-to-image' | 'image-to-text' | 'image-image';

/**
 * The published table's headline columns (REFERENCE section 2) and the figures that feed
 * them. The cross-modal columns are recall@5 averaged over the captioned sets; the model
 * card's per-dataset figures only add up if "text-to-image" (0.899 for jina-clip-v1) is
 * CLIP-benchmark's text_retrieval (an image queries the captions) and "image-to-text"
 * (0.803) is image_retrieval (a caption queries the images): the other way round, Flickr8k
 * would need a recall above 1. So the labels are the published ones, the sources these.
 */
export const COLUMNS: readonly { key: ColumnKey; label: string; source: string; pick: (r: ModelResult) => number | undefined }[] = [
  {
    key: 'text-text',
    label: 'text-text',
    source: 'nDCG@10 averaged over the BEIR (MTEB retrieval) sets',
    pick: (r) => (r.task === 'text' ? r['ndcg@10'] : undefined),
  },
  {
    key: 'text-to-image',
    label: 'text-to-image',
    source: 'text_retrieval recall@5 (image queries captions) averaged over the Karpathy sets, as the published column',
    pick: (r) => (r.task === 'retrieval' ? r.text_retrieval['recall@5'] : undefined),
  },
  {
    key: 'image-to-text',
    label: 'image-to-text',
    source: 'image_retrieval recall@5 (caption queries images) averaged over the Karpathy sets, as the published column',
    pick: (r) => (r.task === 'retrieval' ? r.image_retrieval['recall@5'] : undefined),
  },
  {
    key: 'image-image',
    label: 'image-image',
    source: 'hit@5 of same-class neighbours (CLIP-benchmark recall@5: any of the 5 nearest other images shares the class) averaged over the labelled sets (CIFAR-100 test)',
    pick: (r) => (r.task === 'image-image' ? r.neighbours['hit@5'] : undefined),
  },
];

export interface SummaryRow {
  model: string;
  dtype: string;
  values: Partial<Record<ColumnKey, number>>;
  /** Datasets averaged into each column. */
  datasets: Partial<Record<ColumnKey, string[]>>;
}

export interface Summary {
  columns: { key: ColumnKey; label: string; source: string }[];
  rows: SummaryRow[];
  baseline: string;
  /** Per non-baseline model: (model - baseline) / baseline, in percent. */
  change: { model: string; values: Partial<Record<ColumnKey, number>> }[];
}

export function summarize(results: readonly ModelResult[], models: readonly string[], baseline: string): Summary {
  const rows: SummaryRow[] = models.map((model) => {
    const mine = results.filter((r) => r.model === model);
    const values: SummaryRow['values'] = {};
    const datasets: SummaryRow['datasets'] = {};
    for (const c of COLUMNS) {
      const picked = mine.map((r) => ({ r, v: c.pick(r) })).filter((x): x is { r: ModelResult; v: number } => x.v !== undefined);
      if (picked.length > 0) {
        values[c.key] = mean(picked.map((x) => x.v));
        datasets[c.key] = picked.map((x) => x.r.dataset);
      }
    }
    return { model, dtype: mine[0]?.dtype ?? '', values, datasets };
  });
  const base = rows.find((r) => r.model === baseline);
  const change = rows
    .filter((r) => r.model !== baseline)
    .map((r) => {
      const values: Partial<Record<ColumnKey, number>> = {};
      for (const c of COLUMNS) {
        const v = r.values[c.key];
        const b = base?.values[c.key];
        if (v !== undefined && b !== undefined && b !== 0) values[c.key] = ((v - b) / b) * 100;
      }
      return { model: r.model, values };
    });
  return { columns: COLUMNS.map(({ key, label, source }) => ({ key, label, source })), rows, baseline, change };
}

const f3 = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(3));
const pct = (v: number | undefined): string => (v === undefined ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The Markdown report: the headline table in the published layout, then per-dataset detail. */
export function markdownReport(results: readonly ModelResult[], summary: Summary): string {
  const parts: string[] = [];
  const multi = summary.rows.length > 1;
  const headRows = summary.rows.map((r) => [r.model + (multi && r.model === summary.baseline ? ' (baseline)' : ''), ...COLUMNS.map((c) => f3(r.values[c.key]))]);
  for (const ch of summary.change) {
    const label = summary.change.length > 1 ? `% change vs baseline (${ch.model})` : '% change vs baseline';
    headRows.push([label, ...COLUMNS.map((c) => pct(ch.values[c.key]))]);
  }
  parts.push(table(['model', ...COLUMNS.map((c) => c.label)], headRows));
  parts.push(COLUMNS.map((c) => `- **${c.label}**: ${c.source}${datasetsOf(summary, c.key)}`).join('\n'));

  const byTask = <T extends ModelResult['task']>(task: T) => results.filter((r): r is Extract<ModelResult, { task: T }> => r.task === task);
  const retrieval = byTask('retrieval');
  if (retrieval.length > 0) {
    parts.push('### Cross-modal retrieval (Karpathy test splits)');
    parts.push(table(
      ['model', 'dataset', 'images', 'captions', 'image_retrieval R@1', 'R@5', 'R@10', 'text_retrieval R@1', 'R@5', 'R@10'],
      retrieval.map((r) => [r.model, r.dataset, String(r.counts.images), String(r.counts.captions), ...['1', '5', '10'].map((k) => f3(r.image_retrieval[`recall@${k}`])), ...['1', '5', '10'].map((k) => f3(r.text_retrieval[`recall@${k}`]))]),
    ));
  }
  const text = byTask('text');
  if (text.length > 0) {
    parts.push('### Text retrieval (BEIR)');
    parts.push(table(['model', 'dataset', 'queries', 'corpus', 'nDCG@10', 'recall@10', 'MRR@10'], text.map((r) => [r.model, r.dataset, String(r.counts.queries), String(r.counts.corpus), f3(r['ndcg@10']), f3(r['recall@10']), f3(r['mrr@10'])])));
  }
  const ii = byTask('image-image');
  if (ii.length > 0) {
    parts.push('### Image-image retrieval (same-class neighbours)');
    const keys = ['precision@1', 'precision@5', 'precision@10', 'recall@10', 'hit@1', 'hit@5', 'hit@10'];
    parts.push(table(['model', 'dataset', 'images', 'classes', ...keys], ii.map((r) => [r.model, r.dataset, String(r.counts.images), String(r.counts.classes), ...keys.map((k) => f3(r.neighbours[k]))])));
    parts.push(`Protocol: ${ii[0]!.protocol}.`);
  }
  const zs = byTask('zeroshot');
  if (zs.length > 0) {
    parts.push('### Zero-shot classification');
    parts.push(table(['model', 'dataset', 'images', 'classes', 'top-1', 'top-5'], zs.map((r) => [r.model, r.dataset, String(r.counts.images), String(r.counts.classes), f3(r['accuracy@1']), f3(r['accuracy@5'])])));
    parts.push(`Protocol: ${zs[0]!.protocol}.`);
  }
  return parts.join('\n\n') + '\n';
}

function datasetsOf(summary: Summary, key: ColumnKey): string {
  const names = [...new Set(summary.rows.flatMap((r) => r.datasets[key] ?? []))];
  return names.length > 0 ? ` (here: ${names.join(', ')})` : ' (no dataset given)';
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A grouped bar chart of the headline columns, one bar per model, scale 0 to 1. */
export function svgChart(summary: Summary): string {
  const groupWidth = 40 + 28 * summary.rows.length;
  const left = 50, top = 30, plotH = 240, bottom = 60;
  const width = left + groupWidth * COLUMNS.length + 20;
  const legendH = 18 * summary.rows.length;
  const height = top + plotH + bottom + legendH;
  const y = (v: number) => top + plotH * (1 - Math.max(0, Math.min(1, v)));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${left}" y="18" font-size="14">tessera eval: headline figures</text>`);
  for (let t = 0; t <= 10; t += 2) {
    const v = t / 10;
    out.push(`<line x1="${left}" x2="${width - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  COLUMNS.forEach((c, ci) => {
    const gx = left + ci * groupWidth + 20;
    summary.rows.forEach((r, mi) => {
      const v = r.values[c.key];
      const x = gx + mi * 28;
      if (v === undefined) {
        out.push(`<text x="${x + 12}" y="${y(0) - 4}" text-anchor="middle" fill="#999">n/a</text>`);
        return;
      }
      out.push(`<rect x="${x}" y="${y(v)}" width="24" height="${y(0) - y(v)}" fill="${PALETTE[mi % PALETTE.length]}"><title>${escapeXml(`${r.model} ${c.label}: ${v.toFixed(3)}`)}</title></rect>`);
      out.push(`<text x="${x + 12}" y="${y(v) - 3}" text-anchor="middle" font-size="9">${v.toFixed(2)}</text>`);
    });
    out.push(`<text x="${gx + (28 * summary.rows.length) / 2 - 2}" y="${top + plotH + 18}" text-anchor="middle">${escapeXml(c.label)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${width - 20}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>`);
  summary.rows.forEach((r, mi) => {
    const ly = top + plotH + bottom - 10 + mi * 18;
    out.push(`<rect x="${left}" y="${ly - 10}" width="12" height="12" fill="${PALETTE[mi % PALETTE.length]}"/>`);
    out.push(`<text x="${left + 18}" y="${ly}">${escapeXml(`${r.model} (${r.dtype})${r.model === summary.baseline && summary.rows.length > 1 ? ' baseline' : ''}`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
