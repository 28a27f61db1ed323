// lmp's special tokens and their ids (lmp/vars.py), which lmp's own tokenizers (character, whitespace, BPE)
// use. Code that handles any tokenizer reads `tokenizer.specialIds` instead: the gpt2 tokenizer keeps GPT-2's
// own ids, where <|endoftext|> (50,256) is both BOS and EOS.
export const BOS_ID = 0, EOS_ID = 1, PAD_ID = 2, UNK_ID = 3
export const BOS_TK = '<bos>', EOS_TK = '<eos>', PAD_TK = '<pad>', UNK_TK = '<unk>'
export const SPECIAL_TOKENS = [BOS_TK, EOS_TK, PAD_TK, UNK_TK]

/** Splits text around special tokens; the capture group keeps them as pieces (like lmp's re.split). */
export const SPECIAL_SPLIT = /(<bos>|<eos>|<pad>|<unk>)/
export const isSpecial = (tk: string) => tk === BOS_TK || tk === EOS_TK || tk === PAD_TK || tk === UNK_TK

/** The ids of a tokenizer's special tokens. `bos` may equal `eos` (GPT-2's <|endoftext|>); `pad` and `unk` never
 * equal another. */
export interface SpecialIds {
  readonly bos: number
  readonly eos: number
  readonly pad: number
  readonly unk: number
}

export const LMP_SPECIAL_IDS: SpecialIds = Object.freeze({ bos: BOS_ID, eos: EOS_ID, pad: PAD_ID, unk: UNK_ID })

/** The ids a model is never asked to generate: BOS (unless it is also EOS), PAD and UNK. */
export function neverGenerated(ids: SpecialIds): number[] {
  return ids.bos === ids.eos ? [ids.pad, ids.unk] : [ids.bos, ids.pad, ids.unk]
}

/** A training target that is not predicted (no loss, no gradient): PyTorch's ignore_index, as -1. */
export const IGNORE_INDEX = -1
