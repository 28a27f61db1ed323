// A small SVG line chart (no chart library): axes with round ticks, one polyline per series, and a
// readout of the values at the step under the pointer.
import { ticks, type Point } from './metrics.ts'

export interface Series {
  name: string
  points: Point[]
  color: string
  width?: number
  /** Hidden from the readout (a smoothed copy of another series, say). */
  quiet?: boolean
}

const SVG = 'http://www.w3.org/2000/svg'

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  if (text !== undefined) node.textContent = text
  return node
}

const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : +v.toPrecision(3)).toString()

export function lineChart(title: string, series: Series[], size = { width: 680, height: 240 }): SVGSVGElement {
  const { width, height } = size
  const pad = { left: 52, right: 16, top: 26, bottom: 30 }
  const all = series.flatMap((s) => s.points)
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title })
  svg.append(el('text', { x: pad.left, y: 16, class: 'chart-title' }, title))
  if (all.length === 0) return svg
  const [x0, x1] = [Math.min(...all.map((p) => p.step)), Math.max(...all.map((p) => p.step))]
  let [y0, y1] = [Math.min(...all.map((p) => p.value)), Math.max(...all.map((p) => p.value))]
  if (y0 === y1) [y0, y1] = [y0 - (Math.abs(y0) / 2 || 1), y1 + (Math.abs(y1) / 2 || 1)] // a flat line, in the middle
  const margin = (y1 - y0) * 0.05
  ;[y0, y1] = [y0 - margin, y1 + margin]
  const sx = (x: number) => pad.left + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (width - pad.left - pad.right)
  const sy = (y: number) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom)

  for (const t of ticks(y0, y1, 4)) {
    svg.append(el('line', { x1: pad.left, x2: width - pad.right, y1: sy(t), y2: sy(t), class: 'grid' }))
    svg.append(el('text', { x: pad.left - 6, y: sy(t) + 4, class: 'tick', 'text-anchor': 'end' }, fmt(t)))
  }
  for (const t of ticks(x0, x1, 6)) {
    svg.append(el('text', { x: sx(t), y: height - pad.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, fmt(t)))
  }
  svg.append(el('text', { x: width - pad.right, y: height - 2, class: 'tick', 'text-anchor': 'end' }, 'step'))
  svg.append(el('line', { x1: pad.left, x2: pad.left, y1: pad.top, y2: height - pad.bottom, class: 'axis' }))
  svg.append(el('line', { x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom, class: 'axis' }))

  for (const s of series) {
    if (s.points.length === 0) continue
    const d = s.points.map((p) => `${sx(p.step).toFixed(1)},${sy(p.value).toFixed(1)}`).join(' ')
    svg.append(el('polyline', { points: d, fill: 'none', stroke: s.color, 'stroke-width': s.width ?? 1.5, class: 'series', 'data-series': s.name }))
    if (s.points.length === 1) svg.append(el('circle', { cx: sx(s.points[0].step), cy: sy(s.points[0].value), r: 3, fill: s.color }))
  }
  // Legend, right-aligned in the title row.
  let lx = width - pad.right
  for (const s of [...series].reverse()) {
    if (s.quiet) continue
    const label = el('text', { x: lx, y: 16, class: 'legend', 'text-anchor': 'end', fill: s.color }, s.name)
    svg.append(label)
    lx -= s.name.length * 7 + 18
  }

  // Readout: the nearest logged step's values.
  const cursor = el('line', { y1: pad.top, y2: height - pad.bottom, class: 'cursor-line', visibility: 'hidden' })
  const readout = el('text', { x: pad.left + 8, y: pad.top + 12, class: 'readout' })
  svg.append(cursor, readout)
  svg.addEventListener('pointermove', (e) => {
    const box = svg.getBoundingClientRect()
    const x = ((e.clientX - box.left) / box.width) * width
    const step = x0 + ((x - pad.left) / (width - pad.left - pad.right)) * (x1 - x0)
    const parts: string[] = []
    let at = step
    for (const s of series) {
      if (s.quiet || s.points.length === 0) continue
      const p = s.points.reduce((a, b) => (Math.abs(b.step - step) < Math.abs(a.step - step) ? b : a))
      at = p.step
      parts.push(`${s.name} ${fmt(p.value)}`)
    }
    cursor.setAttribute('x1', String(sx(at)))
    cursor.setAttribute('x2', String(sx(at)))
    cursor.setAttribute('visibility', 'visible')
    readout.textContent = `step ${at}: ${parts.join(' · ')}`
  })
  svg.addEventListener('pointerleave', () => {
    cursor.setAttribute('visibility', 'hidden')
    readout.textContent = ''
  })
  return svg
}
