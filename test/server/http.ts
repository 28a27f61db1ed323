// Small HTTP helpers for the server tests: an app listening on 127.0.0.1:0, JSON posts, SSE reading.
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import type { Test } from 'tap'
import type { App } from '../../server/app.ts'

export async function listen(t: Test, app: App) {
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
    const text = await res.text()
    let json: any
    try { json = JSON.parse(text) } catch { json = undefined }
    return { status: res.status, json, text, headers: res.headers }
  }
  /** Starts a streaming completion; `events` yields each parsed data payload, then 'DONE'. */
  const stream = async (body: object, signal?: AbortSignal) => {
    const res = await fetch(base + '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    })
    return { res, events: sseEvents(res) }
  }
  return { base, post, stream }
}

export async function* sseEvents(res: Response): AsyncGenerator<any> {
  const decoder = new TextDecoder()
  let buffered = ''
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(bytes, { stream: true })
    let cut: number
    while ((cut = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, cut)
      buffered = buffered.slice(cut + 2)
      if (!block.startsWith('data: ')) continue
      yield block === 'data: [DONE]' ? 'DONE' : JSON.parse(block.slice(6))
    }
  }
}

/** The text of a whole stream, its finish reason, and whether it ended with [DONE]. */
export async function readStream(events: AsyncIterable<any>): Promise<{ text: string; finish: string | null; done: boolean; chunks: number }> {
  let text = ''
  let finish: string | null = null
  let done = false
  let chunks = 0
  for await (const ev of events) {
    if (ev === 'DONE') done = true
    else if (ev.choices?.length) {
      chunks++
      text += ev.choices[0].text
      finish = ev.choices[0].finish_reason ?? finish
    }
  }
  return { text, finish, done, chunks }
}

export async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}
