// Prometheus text exposition (version 0.0.4) for GET /metrics, written by hand: a few counters,
// two histograms and gauges are all the server needs.

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
const forwardBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128]

export interface Gauges {
  /** Requests waiting for a batch slot. */
  queueDepth: number
  /** Generations holding a batch slot. */
  activeBatch: number
  modelsLoaded: number
}

class Histogram {
  readonly counts: number[]
  sum = 0
  count = 0
  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0)
  }
  observe(v: number) {
    this.sum += v
    this.count++
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++
  }
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
const labels = (l: Record<string, string | number>) =>
  Object.keys(l).length ? `{${Object.entries(l).map(([k, v]) => `${k}="${esc(String(v))}"`).join(',')}}` : ''

export class Metrics {
  private requests = new Map<string, { labels: Record<string, string | number>; n: number }>()
  private promptTokens = new Map<string, number>()
  private generatedTokens = new Map<string, number>()
  private latency = new Map<string, Histogram>()
  private ttft = new Map<string, Histogram>()
  private forwardSeconds = new Map<string, Histogram>()
  private batchRows = new Map<string, Histogram>()

  request(route: string, status: number, seconds: number) {
    const key = `${route} ${status}`
    const r = this.requests.get(key) ?? { labels: { route, status }, n: 0 }
    r.n++
    this.requests.set(key, r)
    this.hist(this.latency, route).observe(seconds)
  }

  tokens(model: string, prompt: number, generated: number) {
    this.promptTokens.set(model, (this.promptTokens.get(model) ?? 0) + prompt)
    this.generatedTokens.set(model, (this.generatedTokens.get(model) ?? 0) + generated)
  }

  timeToFirstToken(model: string, seconds: number) {
    this.hist(this.ttft, model).observe(seconds)
  }

  /** One batched model call: how many rows it carried and how long it took. */
  forward(model: string, rows: number, seconds: number) {
    this.hist(this.forwardSeconds, model, forwardBuckets).observe(seconds)
    this.hist(this.batchRows, model, batchBuckets).observe(rows)
  }

  private hist(map: Map<string, Histogram>, key: string, buckets = latencyBuckets) {
    let h = map.get(key)
    if (!h) map.set(key, (h = new Histogram(buckets)))
    return h
  }

  render(gauges: Gauges): string {
    const out: string[] = []
    out.push('# HELP lmp_requests_total HTTP requests by route and status.', '# TYPE lmp_requests_total counter')
    for (const r of this.requests.values()) out.push(`lmp_requests_total${labels(r.labels)} ${r.n}`)
    out.push('# HELP lmp_prompt_tokens_total Prompt tokens processed.', '# TYPE lmp_prompt_tokens_total counter')
    for (const [m, n] of this.promptTokens) out.push(`lmp_prompt_tokens_total${labels({ model: m })} ${n}`)
    out.push('# HELP lmp_generated_tokens_total Tokens generated.', '# TYPE lmp_generated_tokens_total counter')
    for (const [m, n] of this.generatedTokens) out.push(`lmp_generated_tokens_total${labels({ model: m })} ${n}`)
    this.renderHist(out, 'lmp_request_duration_seconds', 'Request latency by route.', 'route', this.latency)
    this.renderHist(out, 'lmp_time_to_first_token_seconds', 'Time from request to first generated token.', 'model', this.ttft)
    this.renderHist(out, 'lmp_forward_seconds', 'Duration of one batched model call.', 'model', this.forwardSeconds)
    this.renderHist(out, 'lmp_batch_rows', 'Rows (generations) per batched model call.', 'model', this.batchRows)
    out.push('# HELP lmp_queue_depth Requests waiting for a batch slot.', '# TYPE lmp_queue_depth gauge', `lmp_queue_depth ${gauges.queueDepth}`)
    out.push('# HELP lmp_active_batch Generations holding a batch slot.', '# TYPE lmp_active_batch gauge', `lmp_active_batch ${gauges.activeBatch}`)
    out.push('# HELP lmp_models_loaded Models loaded.', '# TYPE lmp_models_loaded gauge', `lmp_models_loaded ${gauges.modelsLoaded}`)
    return out.join('\n') + '\n'
  }

  private renderHist(out: string[], name: string, help: string, label: string, map: Map<string, Histogram>) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`)
    for (const [key, h] of map) {
      h.buckets.forEach((b, i) => out.push(`${name}_bucket${labels({ [label]: key, le: b })} ${h.counts[i]}`))
      out.push(`${name}_bucket${labels({ [label]: key, le: '+Inf' })} ${h.count}`)
      out.push(`${name}_sum${labels({ [label]: key })} ${h.sum}`)
      out.push(`${name}_count${labels({ [label]: key })} ${h.count}`)
    }
  }
}
