// The Score view: a pasted text, each token coloured by its surprisal (−log₂ p, in bits), its
// probability and the model's top alternatives on hover, and the text's perplexity. The worker runs
// src/infer/perplexity.ts's scoreText, the code behind the server's /v1/perplexity.
import { $, probability, showToken, type PageContext } from './dom.ts'
import type { FromWorker, ScoredToken } from './protocol.ts'

const ALTERNATIVES = 5

export function scoreView(page: PageContext) {
  const ui = {
    view: $<HTMLElement>('view-score'),
    form: $<HTMLFormElement>('score-form'),
    text: $<HTMLTextAreaElement>('score-text'),
    button: $<HTMLButtonElement>('score'),
    summary: $<HTMLSpanElement>('score-summary'),
    output: $<HTMLDivElement>('score-output'),
    scaleMax: $<HTMLSpanElement>('scale-max'),
    tooltip: $<HTMLDivElement>('tooltip'),
  }
  let tokens: ScoredToken[] = []
  // Colours run from 0 bits to log₂(vocabulary): a token as unexpected as a uniform guess is fully red.
  let maxBits = 8

  const setState = (state: 'idle' | 'scoring' | 'scored' | 'error', summary?: string) => {
    ui.view.dataset.state = state
    if (summary !== undefined) ui.summary.textContent = summary
  }

  ui.form.addEventListener('submit', (e) => {
    e.preventDefault()
    if (!page.canRun()) return
    if (!ui.text.value.trim()) {
      setState('error', 'Type or paste a text to score')
      return
    }
    setState('scoring', 'Scoring…')
    page.run({ type: 'score', text: ui.text.value, alternatives: ALTERNATIVES })
  })
  ui.text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) ui.form.requestSubmit()
  })

  function render(msg: Extract<FromWorker, { type: 'scored' }>) {
    tokens = msg.tokens
    const frag = document.createDocumentFragment()
    tokens.forEach((t, i) => {
      const bits = -t.logprob / Math.LN2
      const span = document.createElement('span')
      // EOS reads as itself; a token that holds only part of a character's bytes (gpt2: the character
      // shows with the token that completes it) is an empty sliver that can still be hovered.
      span.className = t.text ? 'tok' : t.special ? 'tok special' : 'tok part'
      span.textContent = t.text || (t.special ? t.token : '')
      span.dataset.index = String(i)
      span.dataset.logprob = String(t.logprob)
      const heat = Math.min(1, bits / maxBits)
      span.style.backgroundColor = `hsl(${Math.round(120 * (1 - heat))} 75% ${Math.round(88 - 10 * heat)}%)`
      frag.append(span)
    })
    ui.output.replaceChildren(frag)
    setState('scored',
      `${msg.count} tokens · perplexity ${msg.perplexity.toFixed(3)} · ${msg.bitsPerToken.toFixed(3)} bits/token · ${(msg.seconds * 1000).toFixed(0)} ms`)
    ui.output.dataset.perplexity = String(msg.perplexity)
  }

  function showTooltip(span: HTMLElement) {
    const t = tokens[Number(span.dataset.index)]
    if (!t) return
    const bits = -t.logprob / Math.LN2
    const head = document.createElement('div')
    head.className = 'tooltip-head'
    head.textContent = `${showToken(t.token)}  p = ${probability(t.logprob)} · ${bits.toFixed(2)} bits`
    const list = document.createElement('ol')
    for (const a of t.top) {
      const li = document.createElement('li')
      li.textContent = `${showToken(a.token)} ${probability(a.logprob)}`
      if (a.id === t.id) li.className = 'actual'
      list.append(li)
    }
    const label = document.createElement('div')
    label.className = 'tooltip-label'
    label.textContent = 'The model expected:'
    ui.tooltip.replaceChildren(head, label, list)
    ui.tooltip.hidden = false
    const box = span.getBoundingClientRect()
    const tip = ui.tooltip.getBoundingClientRect()
    const left = Math.min(window.innerWidth - tip.width - 8, Math.max(8, box.left))
    const below = box.bottom + 6 + tip.height < window.innerHeight
    ui.tooltip.style.left = `${left}px`
    ui.tooltip.style.top = `${below ? box.bottom + 6 : box.top - tip.height - 6}px`
  }

  ui.output.addEventListener('mouseover', (e) => {
    const span = (e.target as HTMLElement).closest<HTMLElement>('.tok')
    if (span) showTooltip(span)
  })
  ui.output.addEventListener('mouseleave', () => { ui.tooltip.hidden = true })

  return {
    text: () => ui.text.value,
    /** Enables the button when the page can run a job. */
    update(canRun: boolean) {
      ui.button.disabled = !canRun
    },
    modelChanged(vocabSize: number) {
      maxBits = Math.max(1, Math.log2(vocabSize))
      ui.scaleMax.textContent = `${maxBits.toFixed(1)} bits (a uniform guess)`
      tokens = []
      ui.output.replaceChildren()
      setState('idle', '')
    },
    onMessage(msg: FromWorker) {
      if (msg.type === 'scored') render(msg)
      else if (msg.type === 'error') setState('error', `Error: ${msg.message}`)
    },
  }
}
