// The data order of training: which token rows each optimizer step sees, and where a run stands in that
// order (so that a resumed run continues it exactly). lmp's shuffled windows over samples, truncated
// BPTT's contiguous streams, and nanoGPT's random windows of one token stream.
import { LmpError } from '../src/errors.ts'
import { lmWindows } from '../src/data/index.ts'
import { IGNORE_INDEX, padToMax, type Tokenizer } from '../src/tokenizer/index.ts'
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
 * A target BOS is not predicted (IGNORE_INDEX), as perplexity never counts it; where BOS is EOS too (GPT-2's
 * <|endoftext|>) the samples share it, one between two samples, as GPT-2 was trained.
 */
export function tbpttStreams(samples: Iterable<string>, tokenizer: Tokenizer, batchSize: number, maxSeqLen: number): DataOrder & { windowsPerEpoch: number } {
  const pieces: number[][] = []
  let total = 0
  const { bos, eos, pad } = tokenizer.specialIds
  for (const s of samples) {
    const ids = bos === eos && pieces.length > 0 ? tokenizer.enc(s).slice(1) : tokenizer.enc(s)
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
        targets.push(Array.from(ids.subarray(start + 1, start + 1 + maxSeqLen), (id) => ((id === bos && bos !== eos) || id === pad ? IGNORE_INDEX : id)))
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

/**
 * The samples as one token stream, as nanoGPT's character task reads its text: each sample's ids without
 * BOS and EOS, concatenated. (With `--task nanogpt` there is one sample, the raw text of the split.)
 */
export function streamIds(samples: Iterable<string>, tokenizer: Tokenizer): Int32Array {
  const pieces: number[][] = []
  let total = 0
  for (const s of samples) {
    const ids = tokenizer.enc(s).slice(1, -1)
    pieces.push(ids)
    total += ids.length
  }
  const out = new Int32Array(total)
  let at = 0
  for (const p of pieces) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/**
 * nanoGPT's get_batch: each row a window of the stream at a uniformly random start i in
 * [0, length - maxSeqLen), inputs ids[i, i+L) and targets ids[i+1, i+1+L) (every position predicted).
 * The starts of batch k depend only on (seed, k), so the position is the number of batches drawn.
 * Throws LmpError when the stream is shorter than maxSeqLen + 1 tokens.
 */
export function randomWindows(ids: Int32Array, c: { batchSize: number; maxSeqLen: number; seed: number }): DataOrder {
  const L = c.maxSeqLen
  if (ids.length < L + 1) throw new LmpError(`the token stream (${ids.length} tokens) is shorter than max_seq_len + 1 = ${L + 1}`)
  let cursor = 0
  return {
    next() {
      // A stream of its own, apart from dropout's (seed * 1_000_003 + step).
      const rng = createRng(c.seed * 1_000_003 + cursor + 0x40000000)
      const inputs: number[][] = []
      const targets: number[][] = []
      for (let b = 0; b < c.batchSize; b++) {
        const i = Math.floor(rng.next() * (ids.length - L))
        inputs.push(Array.from(ids.subarray(i, i + L)))
        targets.push(Array.from(ids.subarray(i + 1, i + 1 + L)))
      }
      cursor++
      return { inputs, targets, fresh: true }
    },
    position: () => ({ epoch: 0, cursor }),
    seek(p) {
      cursor = p.cursor
    },
  }
}

/**
 * The whole stream once, in order: non-overlapping windows of maxSeqLen, so that every token but the first
 * is a target exactly once (the last window's tail padded: targets with IGNORE_INDEX, which no loss counts). Each target's
 * context is what precedes it in its window, 0 to maxSeqLen - 1 tokens: the same spread of context lengths
 * as random windows, so this pass is the value that nanoGPT's random estimate samples.
 */
export function fullPassWindows(ids: Int32Array, maxSeqLen: number): { inputs: number[][]; targets: number[][] } {
  const inputs: number[][] = []
  const targets: number[][] = []
  for (let i = 0; i + 1 < ids.length; i += maxSeqLen) {
    const end = Math.min(i + maxSeqLen, ids.length - 1)
    inputs.push(padToMax(maxSeqLen, Array.from(ids.subarray(i, end))))
    targets.push(padToMax(maxSeqLen, Array.from(ids.subarray(i + 1, end + 1)), IGNORE_INDEX))
  }
  return { inputs, targets }
}

/** Token windows as rows: inputs and targets, with targets that only re-read context, and PAD targets, set to
 * IGNORE_INDEX. */
export function buildWindows(samples: Iterable<string>, tokenizer: Tokenizer, maxSeqLen: number, stride: number) {
  const inputs: number[][] = []
  const targets: number[][] = []
  const { pad } = tokenizer.specialIds
  for (const w of lmWindows(samples, tokenizer, maxSeqLen, stride)) {
    inputs.push(w.cur)
    targets.push(w.next.map((id, i) => (w.isNotCtx[i] && id !== pad ? id : IGNORE_INDEX)))
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
