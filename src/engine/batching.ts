export interface TextBatchLimits {
  /** Most texts in one session run. */
  maxBatch: number;
  /**
   * Bytes the attention score matrices of one layer may take (batch x heads x len^2 x 4).
   * A single text over the budget still runs, alone.
   */
  attentionBudgetBytes: number;
  heads: number;
  /**
   * Without an attention_mask input, padding would change results, so only texts of equal
   * length share a batch.
   */
  equalLengthsOnly: boolean;
}

export const DEFAULT_ATTENTION_BUDGET_BYTES = 1 << 30;

/**
 * A text joins a batch only if padding it to the batch's width wastes at most this fraction
 * of the width (or PADDING_SLACK_TOKENS, for short texts where a run's fixed cost dominates).
 * Measured on the full model (2 cores): a 34-text mixed corpus in batches of up to 32 padded to
 * their longest text ran 8x slower than one text at a time; padding was 5x the real tokens.
 */
export const MAX_PADDING_FRACTION = 0.25;
export const PADDING_SLACK_TOKENS = 16;

/**
 * Groups texts (given by token count) into batches: longest first, so each batch pads to
 * little more than its own texts, within the count, padding and attention-memory limits.
 * Returns the texts' indices per batch.
 */
export function planTextBatches(lengths: readonly number[], limits: TextBatchLimits): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  let width = 0;
  for (const index of order) {
    const length = lengths[index]!;
    const sameWidth = current.length === 0 || (limits.equalLengthsOnly ? length === width : width - length <= Math.max(PADDING_SLACK_TOKENS, width * MAX_PADDING_FRACTION));
    const attentionBytes = (current.length + 1) * limits.heads * Math.max(width, length) ** 2 * 4;
    const fits = current.length === 0 || (sameWidth && current.length < limits.maxBatch && attentionBytes <= limits.attentionBudgetBytes);
    if (!fits) {
      batches.push(current);
      current = [];
    }
    if (current.length === 0) width = length;
    current.push(index);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
