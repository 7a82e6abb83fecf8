// Small statistics for the benchmark report: medians over rounds and quantiles of samples.

/** @param {number[]} xs */
export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return Number.NaN
  const mid = s.length >> 1
  const hi = s[mid] ?? Number.NaN
  return s.length % 2 ? hi : ((s[mid - 1] ?? Number.NaN) + hi) / 2
}

/**
 * @param {number[]} xs
 * @param {number} q in [0, 1]
 */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}
