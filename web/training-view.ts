// The Training view: loss and validation perplexity over steps from the experiment's metrics.jsonl,
// served beside the model (models/NAME/metrics.jsonl), found in a folder opened from disk, or opened
// on its own.
import { lineChart } from './chart.ts'
import { $ } from './dom.ts'
import { parseMetrics, smooth } from './metrics.ts'

export function trainingView() {
  const ui = {
    view: $<HTMLElement>('view-training'),
    source: $<HTMLSpanElement>('training-source'),
    reload: $<HTMLButtonElement>('training-reload'),
    open: $<HTMLInputElement>('open-metrics'),
    status: $<HTMLParagraphElement>('training-status'),
    charts: $<HTMLDivElement>('training-charts'),
    summary: $<HTMLParagraphElement>('training-summary'),
  }
  /** Where the current model's metrics come from: a URL, or text read from disk. */
  let source: { url: string } | { name: string; text: string } | { missing: string } | undefined
  let shownFor: typeof source | null = null

  const setState = (state: 'idle' | 'loading' | 'drawn' | 'missing' | 'error', status: string) => {
    ui.view.dataset.state = state
    ui.status.textContent = status
  }

  function draw(text: string, from: string) {
    const curves = parseMetrics(text)
    ui.charts.replaceChildren()
    ui.summary.textContent = ''
    if (curves.loss.length === 0 && curves.valPpl.length === 0) {
      setState('missing', `${from} has no loss or validation perplexity lines${curves.skipped ? ` (${curves.skipped} unreadable)` : ''}.`)
      return
    }
    ui.charts.append(lineChart('Training loss (nats/token)', [
      { name: 'loss', points: curves.loss, color: '#9db0ef', width: 1 },
      { name: 'smoothed', points: smooth(curves.loss), color: '#3358d4', width: 2, quiet: true },
    ]))
    if (curves.valPpl.length) ui.charts.append(lineChart('Validation perplexity', [{ name: 'val perplexity', points: curves.valPpl, color: '#c2410c', width: 2 }]))
    if (curves.lr.length) ui.charts.append(lineChart('Learning rate', [{ name: 'lr', points: curves.lr, color: '#0f766e' }], { width: 680, height: 150 }))
    const parts: string[] = []
    const lastLoss = curves.loss.at(-1)
    if (lastLoss) parts.push(`step ${lastLoss.step}: loss ${lastLoss.value.toFixed(4)}`)
    if (curves.valPpl.length) {
      const best = curves.valPpl.reduce((a, b) => (b.value < a.value ? b : a))
      parts.push(`best validation perplexity ${best.value.toFixed(3)} at step ${best.step}`)
    }
    if (curves.tokensPerSec.length) {
      const sorted = curves.tokensPerSec.map((p) => p.value).sort((a, b) => a - b)
      parts.push(`median ${Math.round(sorted[sorted.length >> 1])} tokens/s`)
    }
    ui.summary.textContent = parts.join(' · ')
    setState('drawn', `${from}: ${curves.loss.length} training and ${curves.valPpl.length} validation points${curves.skipped ? `, ${curves.skipped} unreadable lines skipped` : ''}.`)
  }

  async function show() {
    shownFor = source
    if (!source) {
      ui.charts.replaceChildren()
      ui.source.textContent = ''
      setState('idle', 'Load a model, or open a metrics.jsonl, to see its training curves.')
      return
    }
    if ('missing' in source) {
      ui.charts.replaceChildren()
      ui.source.textContent = ''
      setState('missing', source.missing)
      return
    }
    if ('text' in source) {
      ui.source.textContent = source.name
      draw(source.text, source.name)
      return
    }
    const { url } = source
    ui.source.textContent = url
    setState('loading', 'Loading…')
    try {
      const res = await fetch(url, { cache: 'no-cache' })
      if (res.status === 404) {
        ui.charts.replaceChildren()
        setState('missing', 'No training metrics for this model: there is no metrics.jsonl beside it. Open one from disk to see its curves.')
        return
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      draw(await res.text(), 'metrics.jsonl')
    } catch (err) {
      ui.charts.replaceChildren()
      setState('error', `Cannot read ${url}: ${(err as Error).message}`)
    }
  }

  ui.reload.addEventListener('click', () => void show())
  ui.open.addEventListener('change', async () => {
    const file = ui.open.files?.[0]
    if (!file) return
    source = { name: file.name, text: await file.text() }
    ui.open.value = ''
    await show()
  })

  return {
    /** The model changed: `url` of its metrics.jsonl, or the text found beside files opened from disk. */
    setSource(next: typeof source) {
      source = next
      shownFor = null
    },
    /** The tab was opened: (re)draw when the source changed since last time. */
    shown() {
      if (shownFor !== source) void show()
    },
  }
}
