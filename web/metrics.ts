// An experiment's metrics.jsonl as the training view plots it: one JSON object a line, training lines
// ({"step","loss","lr","tokensPerSec",...}) and evaluation lines ({"step","valPpl","valLoss"}).
// Browser-safe; tested in Node.

export interface Point { step: number; value: number }

export interface Curves {
  loss: Point[]
  valPpl: Point[]
  lr: Point[]
  tokensPerSec: Point[]
  /** Lines that were not JSON objects with a numeric step (a run killed mid-write leaves one). */
  skipped: number
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

export function parseMetrics(text: string): Curves {
  const curves: Curves = { loss: [], valPpl: [], lr: [], tokensPerSec: [], skipped: 0 }
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    let row: Record<string, unknown>
    try {
      row = JSON.parse(line)
    } catch {
      curves.skipped++
      continue
    }
    if (typeof row !== 'object' || row === null || !num(row.step)) {
      curves.skipped++
      continue
    }
    const step = row.step
    if (num(row.loss)) curves.loss.push({ step, value: row.loss })
    // valPpl is exp(valLoss); a line with only valLoss still gives the curve.
    const ppl = num(row.valPpl) ? row.valPpl : num(row.valLoss) ? Math.exp(row.valLoss) : undefined
    if (ppl !== undefined) curves.valPpl.push({ step, value: ppl })
    if (num(row.lr)) curves.lr.push({ step, value: row.lr })
    if (num(row.tokensPerSec)) curves.tokensPerSec.push({ step, value: row.tokensPerSec })
  }
  // A resumed run appends steps it already logged: keep the latest value of each step, in step order.
  for (const key of ['loss', 'valPpl', 'lr', 'tokensPerSec'] as const) {
    const latest = new Map<number, number>()
    for (const p of curves[key]) latest.set(p.step, p.value)
    curves[key] = [...latest].sort((a, b) => a[0] - b[0]).map(([step, value]) => ({ step, value }))
  }
  return curves
}

/** Exponential moving average (TensorBoard's smoothing), for a readable noisy loss curve. */
export function smooth(points: Point[], weight = 0.8): Point[] {
  let last = points[0]?.value ?? 0
  return points.map((p) => ({ step: p.step, value: (last = last * weight + (1 - weight) * p.value) }))
}

/** About `count` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!
  const out: number[] = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12))
  return out
}
