// Small DOM helpers shared by the page's views.
import type { ToWorker } from './protocol.ts'

export const $ = <T extends HTMLElement>(id: string) => {
  const node = document.getElementById(id)
  if (!node) throw new Error(`the page has no #${id}`)
  return node as T
}

/** What a view needs from the page: a way to the worker, and whether it may start a job now. */
export interface PageContext {
  /** Sends a job to the worker, marking the page busy until its answer comes. */
  run(msg: ToWorker): void
  /** A model is loaded and the worker is free. */
  canRun(): boolean
}

/** A token as the user should see it: quoted, with whitespace and control characters escaped. */
export const showToken = (s: string) => JSON.stringify(s)

export function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`
}

export const probability = (logprob: number) => {
  const p = Math.exp(logprob)
  return p >= 0.001 ? p.toFixed(3) : p.toExponential(1)
}
