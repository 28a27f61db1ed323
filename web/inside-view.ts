// The Inside view: the embedding space (nearest neighbours of a token by cosine similarity, analogies
// a − b + c) for every model, and for Transformer models the attention weights of a chosen layer and
// head over the Score tab's text, as a heat map.
import { $, showToken, type PageContext } from './dom.ts'
import type { FromWorker } from './protocol.ts'

export function insideView(page: PageContext, scoreText: () => string) {
  const ui = {
    info: $<HTMLParagraphElement>('embedding-info'),
    nnForm: $<HTMLFormElement>('neighbours-form'),
    nnToken: $<HTMLInputElement>('nn-token'),
    nnCount: $<HTMLInputElement>('nn-count'),
    nnButton: $<HTMLButtonElement>('neighbours'),
    anForm: $<HTMLFormElement>('analogy-form'),
    anA: $<HTMLInputElement>('an-a'),
    anB: $<HTMLInputElement>('an-b'),
    anC: $<HTMLInputElement>('an-c'),
    anButton: $<HTMLButtonElement>('analogy'),
    result: $<HTMLDivElement>('embedding-result'),
    query: $<HTMLParagraphElement>('embedding-query'),
    list: $<HTMLOListElement>('embedding-list'),
    attSection: $<HTMLDivElement>('attention-section'),
    attNone: $<HTMLParagraphElement>('attention-none'),
    layer: $<HTMLSelectElement>('att-layer'),
    head: $<HTMLSelectElement>('att-head'),
    attButton: $<HTMLButtonElement>('attention'),
    readout: $<HTMLParagraphElement>('attention-readout'),
    canvas: $<HTMLCanvasElement>('attention-canvas'),
  }

  const count = () => {
    const n = Number(ui.nnCount.value)
    return Number.isInteger(n) && n >= 1 && n <= 100 ? n : 10
  }

  ui.nnForm.addEventListener('submit', (e) => {
    e.preventDefault()
    if (!page.canRun() || !ui.nnToken.value) return
    ui.result.dataset.state = 'working'
    page.run({ type: 'embedding', a: ui.nnToken.value, count: count() })
  })
  ui.anForm.addEventListener('submit', (e) => {
    e.preventDefault()
    if (!page.canRun() || !ui.anA.value || !ui.anB.value || !ui.anC.value) return
    ui.result.dataset.state = 'working'
    page.run({ type: 'embedding', a: ui.anA.value, b: ui.anB.value, c: ui.anC.value, count: count() })
  })

  function showNeighbours(msg: Extract<FromWorker, { type: 'neighbours' }>) {
    ui.info.textContent = `${msg.matrix.name}: ${msg.matrix.rows} tokens × ${msg.matrix.dims} dimensions. A token is typed as itself, or as #ID.`
    ui.query.textContent = `Closest to ${msg.query}:`
    ui.list.replaceChildren(...msg.items.map((item) => {
      const li = document.createElement('li')
      const token = document.createElement('code')
      token.textContent = showToken(item.token)
      token.title = `#${item.id}`
      const bar = document.createElement('span')
      bar.className = 'bar'
      bar.style.width = `${Math.max(0, item.cosine) * 8}rem`
      const value = document.createElement('span')
      value.className = 'cosine'
      value.textContent = item.cosine.toFixed(3)
      li.dataset.id = String(item.id)
      li.append(token, bar, value)
      return li
    }))
    ui.result.dataset.state = 'done'
  }

  // --- attention ---------------------------------------------------------------------------------

  let attention: Extract<FromWorker, { type: 'attention' }> | undefined
  const CELL_MAX = 28
  const LABEL = 80 // px for token labels on the top and left

  ui.attButton.addEventListener('click', () => {
    if (!page.canRun()) return
    ui.readout.textContent = 'Running…'
    page.run({ type: 'attention', text: scoreText() })
  })
  ui.layer.addEventListener('change', draw)
  ui.head.addEventListener('change', draw)

  function cellSize(n: number) {
    return Math.max(4, Math.min(CELL_MAX, Math.floor(640 / n)))
  }

  /** The heat map of one layer and head: row = query position, column = key position, white to blue. */
  function draw() {
    if (!attention) return
    const n = attention.tokens.length
    const cell = cellSize(n)
    const layer = attention.layers[Number(ui.layer.value)]
    const head = Number(ui.head.value)
    const dpr = window.devicePixelRatio || 1
    const size = LABEL + n * cell
    ui.canvas.width = size * dpr
    ui.canvas.height = size * dpr
    ui.canvas.style.width = `${size}px`
    ui.canvas.style.height = `${size}px`
    const g = ui.canvas.getContext('2d')!
    g.scale(dpr, dpr)
    g.fillStyle = '#fff'
    g.fillRect(0, 0, size, size)
    for (let q = 0; q < n; q++) {
      for (let k = 0; k < n; k++) {
        const w = layer[(head * n + q) * n + k]
        const light = Math.round(255 - 200 * Math.min(1, Math.max(0, w)))
        g.fillStyle = `rgb(${light},${Math.round(25.5 + light * 0.9)},255)`
        g.fillRect(LABEL + k * cell, LABEL + q * cell, cell, cell)
      }
    }
    if (cell >= 8) {
      g.fillStyle = '#1d2430'
      g.font = `${Math.min(12, cell - 1)}px ui-monospace, monospace`
      g.textBaseline = 'middle'
      attention.tokens.forEach((t, i) => {
        const label = clip(t)
        g.textAlign = 'right'
        g.fillText(label, LABEL - 4, LABEL + i * cell + cell / 2)
        g.save()
        g.translate(LABEL + i * cell + cell / 2, LABEL - 4)
        g.rotate(-Math.PI / 2)
        g.textAlign = 'left'
        g.fillText(label, 0, 0)
        g.restore()
      })
    }
    ui.canvas.dataset.layer = ui.layer.value
    ui.canvas.dataset.head = ui.head.value
  }

  const clip = (t: string) => {
    const s = t.replace(/\s/g, '␣')
    return s.length > 10 ? s.slice(0, 9) + '…' : s
  }

  ui.canvas.addEventListener('mousemove', (e) => {
    if (!attention) return
    const n = attention.tokens.length
    const cell = cellSize(n)
    const box = ui.canvas.getBoundingClientRect()
    const k = Math.floor((e.clientX - box.left - LABEL) / cell)
    const q = Math.floor((e.clientY - box.top - LABEL) / cell)
    if (q < 0 || k < 0 || q >= n || k >= n) return
    const w = attention.layers[Number(ui.layer.value)][(Number(ui.head.value) * n + q) * n + k]
    ui.readout.textContent = `${showToken(attention.tokens[q])} (position ${q}) → ${showToken(attention.tokens[k])} (position ${k}): ${w.toFixed(4)}`
  })

  function showAttention(msg: Extract<FromWorker, { type: 'attention' }>) {
    attention = msg
    const keep = (select: HTMLSelectElement, count: number, label: string) => {
      const was = select.value
      select.replaceChildren(...Array.from({ length: count }, (_, i) => new Option(`${label} ${i}`, String(i))))
      if (Number(was) < count) select.value = was
    }
    keep(ui.layer, msg.layers.length, 'layer')
    keep(ui.head, msg.heads, 'head')
    ui.readout.textContent = `${msg.tokens.length} tokens${msg.truncated ? ' (the first of a longer text)' : ''}: hover a cell`
    draw()
  }

  return {
    update(canRun: boolean) {
      ui.nnButton.disabled = ui.anButton.disabled = ui.attButton.disabled = !canRun
    },
    modelChanged(attentionLayers: number) {
      attention = undefined
      ui.attSection.hidden = attentionLayers === 0
      ui.attNone.hidden = attentionLayers > 0
      ui.layer.replaceChildren(...Array.from({ length: attentionLayers }, (_, i) => new Option(`layer ${i}`, String(i))))
      ui.head.replaceChildren()
      ui.canvas.width = ui.canvas.height = 0
      ui.canvas.style.width = ui.canvas.style.height = '0'
      ui.readout.textContent = ''
      ui.list.replaceChildren()
      ui.query.textContent = ''
      ui.result.dataset.state = 'idle'
    },
    /** The Inside tab was opened: show something without a click when nothing is shown yet. */
    shown() {
      if (ui.list.childElementCount === 0 && page.canRun()) ui.nnForm.requestSubmit()
    },
    onMessage(msg: FromWorker) {
      if (msg.type === 'neighbours') showNeighbours(msg)
      else if (msg.type === 'attention') showAttention(msg)
      else if (msg.type === 'error' && msg.job === 'embedding') {
        ui.query.textContent = `Error: ${msg.message}`
        ui.list.replaceChildren()
        ui.result.dataset.state = 'error'
      } else if (msg.type === 'error' && msg.job === 'attention') ui.readout.textContent = `Error: ${msg.message}`
    },
  }
}
