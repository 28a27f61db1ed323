// Special tokens shared by every tokenizer, with lmp's ids (lmp/vars.py).
export const BOS_ID = 0, EOS_ID = 1, PAD_ID = 2, UNK_ID = 3
export const BOS_TK = '<bos>', EOS_TK = '<eos>', PAD_TK = '<pad>', UNK_TK = '<unk>'
export const SPECIAL_TOKENS = [BOS_TK, EOS_TK, PAD_TK, UNK_TK]

/** Splits text around special tokens; the capture group keeps them as pieces (like lmp's re.split). */
export const SPECIAL_SPLIT = /(<bos>|<eos>|<pad>|<unk>)/
export const isSpecial = (tk: string) => tk === BOS_TK || tk === EOS_TK || tk === PAD_TK || tk === UNK_TK
