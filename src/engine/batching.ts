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
 * Groups texts (given by token count) into batches: longest first, so each batch pads to
 * little more than its own texts, within the count and attention-memory limits.
 * Returns the texts' indices per batch.
 */
export function planTextBatches(lengths: readonly number[], limits: TextBatchLimits): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  let width = 0;
  for (const index of order) {
    const length = lengths[index]!;
    const sameWidth = current.length === 0 || !limits.equalLengthsOnly || length === width;
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
