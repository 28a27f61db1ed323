// The seam between the HTTP routes and the model: routes ask an Engine for a stream of token events or a
// score. The batching engine gives every model one worker loop; the generations in flight on a model
// share its forward calls, batched along the batch axis (state rows concatenated; while the same rows
// step together, a call's output state is the next call's input as it is), and join or leave between steps.
//
// Two rows can share a call only when that cannot change what either computes: they feed the same number
// of tokens, and their states have the same shape apart from the batch axis, or differ only in how many
// tokens a Transformer's key/value cache holds when its graph takes ATTENTION_MASK (src/infer/batch.ts:
// caches aligned at the end, the slots in front masked out). So prompts of equal length are prefilled
// together and all one-token decode steps are batched, requests joining and leaving between steps; a
// Transformer exported before ATTENTION_MASK batches only rows whose caches have the same length.
//
// Scoring (/v1/perplexity) has a lane of its own: one job at a time per model, fed to the model in slices
// (one forward call each, at most scoreSliceTokens tokens for a recurrent model, one window for a
// Transformer), and the loop runs one slice between two decoding steps. A long text then delays each
// step by one slice, instead of every generation waiting for whole scoring jobs queued before it.
import { Generation, type GenerateOptions, type GenerationEvent } from '../src/infer/generate.ts'
import { scoreText, type Score } from '../src/infer/perplexity.ts'
import { pastAxes, stackRows, takeRow, type RowState } from '../src/infer/batch.ts'
import { ATTENTION_MASK, type State } from '../src/infer/types.ts'
import { HttpError } from './errors.ts'
import type { ServedModel } from './models.ts'
import type { StepModel } from '../src/infer/types.ts'

export type GenerationParams = GenerateOptions
export type TokenEvent = GenerationEvent
export type ScoreResult = Score

export interface Engine {
  /**
   * Queues one generation; `onEvent` gets each token event as soon as its step is done (synchronously, from
   * the model's loop: it must be quick and must not throw). Queuing happens in the call itself, so a full
   * queue (HttpError 429) or a bad prompt (LmpError) throws before any response is written. The promise
   * resolves when the generation ends: after the done event, or early, without one, when `signal` aborts;
   * it rejects when the model call fails. While `ready` (optional) returns false, the generation sits out
   * decoding steps, keeping its batch slot: back-pressure from a client that does not read its stream.
   */
  generate(m: ServedModel, prompt: string | readonly number[], params: GenerationParams, signal: AbortSignal, onEvent: (ev: TokenEvent) => void, ready?: () => boolean): Promise<void>
  score(m: ServedModel, text: string | readonly number[], opts: { perToken: boolean; alternatives?: number }, signal: AbortSignal): Promise<ScoreResult>
  /** How many more requests the model's queue takes now. */
  room(m: ServedModel): number
  /** Resolves when nothing is running or waiting (graceful shutdown). */
  idle(): Promise<void>
  /** Requests in flight, waiting or running. */
  readonly active: number
  /** Requests waiting for a batch slot. */
  readonly waiting: number
  /** Generations holding a batch slot. */
  readonly running: number
}

export interface EngineOptions {
  /** Most generations that share a model's forward calls. */
  maxBatch: number
  /** Most requests that wait for a slot, per model; beyond that, 429. */
  maxQueue: number
  /** Told about every forward call (for /metrics). */
  onForward?: (model: string, rows: number, seconds: number) => void
  /** Most tokens in one scoring slice of a recurrent model (default 128); the state carries across slices. */
  scoreSliceTokens?: number
}

export class QueueFullError extends HttpError {
  constructor(retryAfterSeconds = 1) {
    super(429, 'the server is busy: too many requests in flight; retry shortly', null, 'queue_full', retryAfterSeconds)
  }
}

interface Slot {
  gen: Generation
  /** This row's state (batch 1), or null before its prefill and while it sits in `inBatch`. */
  state: State | null
  /** Where this row's state sits in the output of the last forward call it took part in. */
  inBatch: { batch: Batch; row: number } | null
  /** The consumer's callback. A callback, not an async iterator: a token then costs no promises. */
  onEvent: (ev: TokenEvent) => void
  /** Whether the consumer takes another token now (its socket has drained). */
  ready: () => boolean
  ended: boolean
  error?: unknown
  /** Settles the promise generate() returned. */
  settle: (error?: unknown) => void
  detach: () => void
}

/** One forward call's rows and its output state (batch on axis 0), each row's cache padding. */
interface Batch {
  rows: Slot[]
  state: State
  padding: number[]
}

interface Job {
  run(): Promise<void>
}

/** One forward call of the running scoring job, waiting for its turn between decoding steps. */
type Slice = () => Promise<void>

/** One model's queue and batch, its scoring lane, and the loop that steps them. */
class Worker {
  readonly waiting: Slot[] = []
  readonly running: Slot[] = []
  /** Scoring jobs not started yet, in arrival order. */
  readonly scoreQueue: Job[] = []
  /** The scoring job that runs, and its next forward call when it has asked for one. */
  private scoring: Job | null = null
  private slice: Slice | null = null
  private looping = false
  /** Per state entry, the axis that grows (a key/value cache's 'past'), or -1. */
  private readonly pastAxes: number[]
  /** Whether rows whose caches differ in length can share a call (the graph takes ATTENTION_MASK). */
  private readonly padded: boolean

  constructor(
    readonly m: ServedModel,
    private readonly opts: EngineOptions,
    private readonly changed: () => void,
  ) {
    this.pastAxes = pastAxes(m.manifest)
    this.padded = m.manifest.inputs.some((i) => i.name === ATTENTION_MASK)
  }

  get load(): number {
    return this.waiting.length + this.running.length + this.scoreQueue.length + (this.scoring ? 1 : 0)
  }

  room(): number {
    return Math.max(0, this.opts.maxBatch - this.running.length) + this.opts.maxQueue - this.waiting.length - this.scoreQueue.length
  }

  enqueue(item: Slot | Job): void {
    if (this.room() <= 0) throw new QueueFullError()
    if ('gen' in item) this.waiting.push(item)
    else this.scoreQueue.push(item)
    if (!this.looping) {
      this.looping = true
      void this.loop()
    }
  }

  /** Takes a slot out of the queue or the batch at once: its row is not fed to the next step. */
  remove(slot: Slot): void {
    for (const list of [this.waiting, this.running]) {
      const i = list.indexOf(slot)
      if (i >= 0) list.splice(i, 1)
    }
    end(slot)
    this.changed()
  }

  private async loop(): Promise<void> {
    try {
      while (this.load > 0) {
        // Admit waiting generations in arrival order.
        while (this.waiting.length && this.running.length < this.opts.maxBatch) this.running.push(this.waiting.shift()!)
        if (!this.scoring && this.scoreQueue.length) {
          const job = (this.scoring = this.scoreQueue.shift()!)
          void job.run().finally(() => {
            this.scoring = null
            this.changed()
          })
        }
        // One slice of scoring, then one decoding step.
        const slice = this.slice
        this.slice = null
        if (slice) await slice()
        const stepped = await this.step()
        this.changed()
        // Let the event loop deliver the tokens and take new requests before the next step; when every
        // generation waits for its client to read (and no scoring ran), look again a little later.
        if (slice || stepped) await new Promise((resolve) => setImmediate(resolve))
        else await new Promise((resolve) => setTimeout(resolve, 2))
      }
    } finally {
      this.looping = false
      this.changed()
    }
  }

  /**
   * The model as the running scoring job sees it: each forward call waits for its turn in the loop. A
   * call after `signal` aborted rejects (499), which ends the job.
   */
  scoringModel(signal: AbortSignal): StepModel {
    const m = this.m.model
    return {
      manifest: m.manifest,
      initState: (batch) => m.initState(batch),
      forward: (ids, state) => new Promise((resolve, reject) => {
        this.slice = async () => {
          if (signal.aborted) return reject(new HttpError(499, 'the client went away'))
          const started = performance.now()
          try {
            resolve(await m.forward(ids, state))
            this.opts.onForward?.(this.m.name, ids.length, (performance.now() - started) / 1000)
          } catch (err) {
            reject(err)
          }
        }
      }),
    }
  }

  /** One forward call per group of rows that can share it; every running generation advances a token. */
  private async step(): Promise<boolean> {
    const groups = new Map<string | number, Slot[]>()
    for (const slot of this.running) {
      if (!slot.ready()) continue
      if (slot.gen.freshState || (!slot.state && !slot.inBatch)) {
        slot.state = this.m.model.initState(1)
        slot.inBatch = null
      }
      // Recurrent states never change shape, and padded caches need not agree: the number of tokens fed
      // is then the whole key.
      const fed = slot.gen.inputIds.length
      const key = this.padded || this.pastAxes.every((a) => a < 0)
        ? fed
        : `${fed}|${(slot.state ?? slot.inBatch!.batch.state).map((s) => s.dims.slice(1).join('x')).join(',')}`
      const group = groups.get(key)
      if (group) group.push(slot)
      else groups.set(key, [slot])
    }
    for (const group of groups.values()) {
      // A row whose client left during an earlier call of this step is skipped.
      const rows = group.filter((s) => !s.ended)
      if (rows.length) await this.forward(rows)
    }
    return groups.size > 0
  }

  /** A row's own state (batch 1): its own, or its row of the last batch it was in, padding and all. */
  private rowState(slot: Slot): RowState {
    if (slot.state) return { state: slot.state, padding: 0 }
    const { batch, row } = slot.inBatch!
    if (batch.rows.length === 1) return { state: batch.state, padding: batch.padding[0] }
    return { state: takeRow(this.pastAxes, batch.state, batch.rows.length, row, batch.padding[row]), padding: 0 }
  }

  private async forward(rows: Slot[]): Promise<void> {
    const ids = rows.map((s) => s.gen.inputIds)
    const started = performance.now()
    let out: { logits: Float32Array; state: State }
    let input: { state: State; padding: number[] }
    try {
      // The same rows in the same order as the call that made their states (steady decoding): that call's
      // output is this one's input as it is. Otherwise the rows' states are gathered into a new batch.
      const last = rows[0].inBatch?.batch
      const same = last !== undefined && last.rows.length === rows.length && rows.every((s, i) => s.inBatch?.batch === last && s.inBatch.row === i)
      input = same ? last : stackRows(this.pastAxes, rows.map((s) => this.rowState(s)))
      out = await this.m.model.forward(ids, input.state, this.padded ? input.padding : undefined)
    } catch (err) {
      for (const s of rows) {
        s.error = err
        this.remove(s)
      }
      return
    }
    this.opts.onForward?.(this.m.name, rows.length, (performance.now() - started) / 1000)
    const seq = ids[0].length
    const vocab = out.logits.length / (rows.length * seq)
    const batch: Batch = { rows, state: out.state, padding: input.padding }
    rows.forEach((s, b) => {
      if (s.ended) return // cancelled while the call ran
      s.state = null
      s.inBatch = { batch, row: b }
      const at = (b * seq + seq - 1) * vocab
      try {
        s.onEvent(s.gen.accept(out.logits.subarray(at, at + vocab)))
      } catch (err) {
        s.error = err
        this.remove(s)
        return
      }
      if (s.gen.done) this.remove(s)
    })
  }
}

function end(slot: Slot): void {
  if (slot.ended) return
  slot.ended = true
  slot.detach()
  slot.settle(slot.error)
}


/**
 * Runs `cancel` when `signal` aborts; returns the function that forgets it. One 'abort' listener per
 * signal, however many generations share it (n choices: no MaxListenersExceededWarning at 11).
 */
const cancels = new WeakMap<AbortSignal, Set<() => void>>()
function onAbort(signal: AbortSignal, cancel: () => void): () => void {
  let set = cancels.get(signal)
  if (!set) {
    const fns = (set = new Set())
    cancels.set(signal, fns)
    signal.addEventListener('abort', () => {
      cancels.delete(signal)
      for (const fn of fns) fn()
    }, { once: true })
  }
  set.add(cancel)
  return () => set.delete(cancel)
}

export function createBatchingEngine(opts: EngineOptions): Engine {
  const workers = new Map<ServedModel, Worker>()
  let idleWaiters: (() => void)[] = []
  const total = (f: (w: Worker) => number) => [...workers.values()].reduce((a, w) => a + f(w), 0)
  const changed = () => {
    if (idleWaiters.length && total((w) => w.load) === 0) {
      for (const resolve of idleWaiters) resolve()
      idleWaiters = []
    }
  }
  const worker = (m: ServedModel) => {
    let w = workers.get(m)
    if (!w) workers.set(m, (w = new Worker(m, opts, changed)))
    return w
  }

  return {
    get active() { return total((w) => w.load) },
    get waiting() { return total((w) => w.waiting.length + w.scoreQueue.length) },
    get running() { return total((w) => w.running.length) },
    room: (m) => worker(m).room(),

    generate(m, prompt, params, signal, onEvent, ready = () => true) {
      const w = worker(m)
      if (w.room() <= 0) throw new QueueFullError()
      const gen = new Generation(m.tokenizer, prompt, { ...params, maxSeqLen: m.manifest.maxSeqLen })
      let settle: Slot['settle'] = () => {}
      const ended = new Promise<void>((resolve, reject) => (settle = (err) => (err === undefined ? resolve() : reject(err))))
      const slot: Slot = { gen, state: null, inBatch: null, onEvent, ready, ended: false, settle, detach: () => {} }
      if (gen.done || signal.aborted) end(slot) // max_tokens 0, or already cancelled
      else {
        w.enqueue(slot)
        // The canceller goes when the generation ends, so a long-lived signal does not collect them.
        slot.detach = onAbort(signal, () => w.remove(slot))
      }
      return ended
    },

    score(m, text, o, signal) {
      return new Promise((resolve, reject) => {
        const w = worker(m)
        w.enqueue({
          async run() {
            if (signal.aborted) return reject(new HttpError(499, 'the client went away'))
            try {
              // A recurrent model's result does not depend on the chunk; a Transformer keeps its window.
              const window = m.manifest.maxSeqLen === null ? opts.scoreSliceTokens ?? 128 : undefined
              resolve(await scoreText(w.scoringModel(signal), m.tokenizer, text, { perToken: o.perToken, alternatives: o.alternatives, window }))
            } catch (err) {
              reject(err)
            }
          },
        })
      })
    },

    idle() {
      return total((w) => w.load) === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))
    },
  }
}
