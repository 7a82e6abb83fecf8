// The benchmark report: medians per configuration, ratios to the baselines of the same run, the
// issue-5 targets as pass/fail lines, as Markdown (stdout, bench/README.md) from the JSON result.

/**
 * @typedef {{ rps: number, p50: number, p99: number, cpuUs: number, upstreamCpuUs: number, statuses: Record<string, number>, errors: number }} Figures
 * @typedef {{ id: string, label: string, kind: string, expect: number }} Row
 * @typedef {{ name: string, pass: boolean | null, detail: string }} Target
 */

const f0 = (/** @type {number} */ x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
const f2 = (/** @type {number} */ x) => (Number.isFinite(x) ? x.toFixed(2) : '–')
const ratio = (/** @type {number} */ a, /** @type {number | undefined} */ b) =>
  b && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–'

/**
 * Share of answers that were not the expected status (errors included), as a short note.
 * @param {Figures} m @param {number} expect
 */
function unexpected(m, expect) {
  let total = m.errors
  let bad = m.errors
  for (const [status, n] of Object.entries(m.statuses)) {
    total += n
    if (Number(status) !== expect) bad += n
  }
  if (!total) return 'no answers'
  return bad ? `${((100 * bad) / total).toFixed(1)}% unexpected` : `all ${expect}`
}

/**
 * @param {Row[]} rows
 * @param {Record<string, Figures>} med
 */
export function loadTable(rows, med) {
  const direct = med.direct
  const undici = med.undici
  const peer = med['nginx-auth']
  const out = [
    '| configuration | req/s | ×direct | p50 ms | p99 ms | p99 −direct ms | CPU µs/req | ×undici | ×nginx auth | upstream µs/req | answers |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ]
  for (const r of rows) {
    const m = med[r.id]
    if (!m) continue
    const cpu = r.id === 'direct' ? '–' : f0(m.cpuUs)
    out.push(
      `| ${r.label} | ${f0(m.rps)} | ${ratio(m.rps, direct?.rps)} | ${f2(m.p50)} | ${f2(m.p99)} | ${direct ? f2(m.p99 - direct.p99) : '–'} | ${cpu} | ${r.id === 'direct' ? '–' : ratio(m.cpuUs, undici?.cpuUs)} | ${r.id === 'direct' ? '–' : ratio(m.cpuUs, peer?.cpuUs)} | ${f0(m.upstreamCpuUs)} | ${unexpected(m, r.expect)} |`,
    )
  }
  return out.join('\n')
}

/**
 * @param {Row[]} rows
 * @param {Record<string, Figures>} med
 */
export function latencyTable(rows, med) {
  const off = med['auth-off']
  const out = [
    '| configuration | req/s | p50 ms | p99 ms | p99 −auth-off ms | CPU µs/req |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of rows) {
    const m = med[r.id]
    if (!m) continue
    out.push(
      `| ${r.label} | ${f0(m.rps)} | ${f2(m.p50)} | ${f2(m.p99)} | ${off ? f2(m.p99 - off.p99) : '–'} | ${r.id === 'direct' ? '–' : f0(m.cpuUs)} |`,
    )
  }
  return out.join('\n')
}

/**
 * Large transfers: throughput, its ratio to direct, peak RSS growth and CPU seconds per GiB of
 * the process in the path (the upstream's for "direct"; without the upstream's otherwise).
 * @param {Record<string, import('./transfer.js').TransferMedians>} med
 * @param {number} mb
 */
export function transferTable(med, mb) {
  const direct = med.direct
  const out = [
    `| ${mb} MB through | download MB/s | ×direct | RSS growth MB | CPU s/GB | upload MB/s | ×direct | RSS growth MB | CPU s/GB |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const [id, m] of Object.entries(med)) {
    const d = m.download
    const u = m.upload
    out.push(
      `| ${id} | ${f0(d.mbPerS)} | ${ratio(d.mbPerS, direct?.download.mbPerS)} | ${f0(d.rssGrowthMb)} | ${f2(d.cpuSPerGb)} | ${f0(u.mbPerS)} | ${ratio(u.mbPerS, direct?.upload.mbPerS)} | ${f0(u.rssGrowthMb)} | ${f2(u.cpuSPerGb)} |`,
    )
  }
  return out.join('\n')
}

/** @param {Target[]} targets */
export function targetLines(targets) {
  return targets
    .map((t) => `- ${t.pass === null ? 'SKIP' : t.pass ? 'PASS' : 'FAIL'} ${t.name}: ${t.detail}`)
    .join('\n')
}
