// lmp's LMFormatDset, as a lazy generator: context windows over encoded samples.
import { LmpError } from '../errors.ts'
import { padToMax, type Tokenizer } from '../tokenizer/index.ts'

export interface Window {
  cur: number[]
  next: number[]
  /** false where the position only re-reads context already predicted by the previous window */
  isNotCtx: boolean[]
}

/**
 * For each sample: ids = enc(sample); a window starts every `stride` ids; cur = ids[i, i+L), next =
 * ids[i+1, i+1+L), both padded with PAD to L; a window whose cur starts with EOS is skipped. The first window
 * of a sample predicts every position; later ones only their last `stride` (the rest is overlap).
 * Samples are encoded one at a time, so nothing but the current sample sits in memory.
 */
export function* lmWindows(samples: Iterable<string>, tknzr: Tokenizer, maxSeqLen: number, stride: number): Generator<Window> {
  if (!Number.isInteger(maxSeqLen) || !Number.isInteger(stride) || stride < 1 || stride > maxSeqLen) {
    throw new LmpError(`must have 1 <= stride <= max_seq_len (got stride ${stride}, max_seq_len ${maxSeqLen})`)
  }
  const ctxLen = maxSeqLen - stride
  const first = new Array<boolean>(maxSeqLen).fill(true)
  const later = [...new Array<boolean>(ctxLen).fill(false), ...new Array<boolean>(stride).fill(true)]
  const { eos, pad } = tknzr.specialIds
  for (const sample of samples) {
    const ids = tknzr.enc(sample)
    for (let i = 0; i < ids.length; i += stride) {
      if (i > 0 && ids[i] === eos) continue // (ids[0] is BOS, which is EOS too for gpt2)
      yield {
        cur: padToMax(maxSeqLen, ids.slice(i, i + maxSeqLen), pad),
        next: padToMax(maxSeqLen, ids.slice(i + 1, i + 1 + maxSeqLen), pad),
        isNotCtx: (i === 0 ? first : later).slice(),
      }
    }
  }
}

/** lmp's n_tk: the number of ids (BOS and EOS included) the samples encode to. */
export function countTokens(samples: Iterable<string>, tknzr: Tokenizer): number {
  let n = 0
  for (const s of samples) n += tknzr.enc(s).length
  return n
}
