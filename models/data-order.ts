// The data order of training: which token rows each optimizer step sees, and where a run stands in that
// order (so that a resumed run continues it exactly). lmp's shuffled windows over samples, and truncated
// BPTT's contiguous streams.
import { LmpError } from '../src/errors.ts'
import { lmWindows } from '../src/data/index.ts'
import { BOS_ID, PAD_ID, type Tokenizer } from '../src/tokenizer/index.ts'
import { createRng } from '../src/infer/rng.ts'

/** One step's rows; `fresh`: the rows start new streams (TBPTT starts from the zero state). */
export interface Batch {
  inputs: number[][]
  targets: number[][]
  fresh: boolean
}

/** Where the data order stands; with the seed, enough to continue it exactly. */
export interface Position {
  epoch: number
  cursor: number
}

export interface DataOrder {
  next(): Batch
  position(): Position
  seek(p: Position): void
}

/**
 * lmp's order: windows shuffled anew each epoch. The order of epoch e depends only on (seed, e), so
 * (epoch, cursor) says where a run stands.
 */
export function shuffledWindows(
  samples: string[], tokenizer: Tokenizer, c: { batchSize: number; maxSeqLen: number; stride: number; seed: number },
): DataOrder {
  const { inputs, targets } = buildWindows(samples, tokenizer, c.maxSeqLen, c.stride)
  if (inputs.length === 0) throw new LmpError('the dataset has no training windows')
  let order: number[] = []
  let epoch = -1
  let cursor = 0
  const startEpoch = (e: number) => {
    epoch = e
    order = e >= 0 ? shuffle(inputs.length, c.seed + 7919 * (e + 1)) : []
  }
  return {
    next() {
      const batch: number[] = []
      while (batch.length < c.batchSize) {
        if (cursor >= order.length) {
          startEpoch(epoch + 1)
          cursor = 0
        }
        batch.push(order[cursor++])
      }
      return { inputs: batch.map((i) => inputs[i]), targets: batch.map((i) => targets[i]), fresh: true }
    },
    position: () => ({ epoch, cursor }),
    seek(p) {
      startEpoch(p.epoch)
      cursor = p.cursor
    },
  }
}

/**
 * Truncated BPTT (char-rnn's layout): the samples' token ids, concatenated, are cut into batchSize
 * contiguous streams; step k of an epoch feeds row b the k-th window of stream b, so the final state of
 * one step is the right initial state of the next. Every epoch walks the streams from the start again.
 * A target BOS is not predicted (PAD), as perplexity never counts it.
 */
export function tbpttStreams(samples: Iterable<string>, tokenizer: Tokenizer, batchSize: number, maxSeqLen: number): DataOrder & { windowsPerEpoch: number } {
  const pieces: number[][] = []
  let total = 0
  for (const s of samples) {
    const ids = tokenizer.enc(s)
    pieces.push(ids)
    total += ids.length
  }
  const ids = new Int32Array(total)
  let at = 0
  for (const p of pieces) {
    ids.set(p, at)
    at += p.length
  }
  const streamLen = Math.floor(total / batchSize)
  const windowsPerEpoch = Math.floor((streamLen - 1) / maxSeqLen)
  if (windowsPerEpoch < 1) {
    throw new LmpError(`--tbptt: the training text (${total} tokens) is too short for ${batchSize} streams of max_seq_len + 1 = ${maxSeqLen + 1} tokens`)
  }
  let epoch = 0
  let cursor = 0
  return {
    windowsPerEpoch,
    next() {
      if (cursor >= windowsPerEpoch) {
        epoch++
        cursor = 0
      }
      const inputs: number[][] = []
      const targets: number[][] = []
      for (let b = 0; b < batchSize; b++) {
        const start = b * streamLen + cursor * maxSeqLen
        inputs.push(Array.from(ids.subarray(start, start + maxSeqLen)))
        targets.push(Array.from(ids.subarray(start + 1, start + 1 + maxSeqLen), (id) => (id === BOS_ID ? PAD_ID : id)))
      }
      return { inputs, targets, fresh: cursor++ === 0 }
    },
    position: () => ({ epoch, cursor }),
    seek(p) {
      epoch = p.epoch
      cursor = p.cursor
    },
  }
}

/** Token windows as rows: inputs and targets, with targets that only re-read context set to PAD. */
export function buildWindows(samples: Iterable<string>, tokenizer: Tokenizer, maxSeqLen: number, stride: number) {
  const inputs: number[][] = []
  const targets: number[][] = []
  for (const w of lmWindows(samples, tokenizer, maxSeqLen, stride)) {
    inputs.push(w.cur)
    targets.push(w.next.map((id, i) => (w.isNotCtx[i] ? id : PAD_ID)))
  }
  return { inputs, targets }
}

/** Fisher–Yates shuffle of 0..n-1 with a seeded generator. */
function shuffle(n: number, seed: number): number[] {
  const rng = createRng(seed)
  const a = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
