// lmp's word split: re.split('(<bos>|<eos>|<pad>|<unk>|\s+)', txt), strip each piece, drop empty ones.
// Applied to normalized text, where every whitespace run is already one ' '.
import { SPECIAL_SPLIT } from './special.ts'
import { WS_RUN } from './norm.ts'

export function splitWords(normed: string): string[] {
  const out: string[] = []
  for (const piece of normed.split(SPECIAL_SPLIT)) {
    for (const w of piece.split(WS_RUN)) if (w !== '') out.push(w)
  }
  return out
}
