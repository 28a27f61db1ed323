// How each token of an encoded text reads in the decoded text, so the score view can colour the text
// token by token. dec() normalizes and strips the ends of what it decodes, so a token's piece is what
// it adds to the decoded text of the CONTEXT tokens before it (as the generation loop streams text).
// Browser-safe; tested in Node.
import type { TextCodec } from '../src/infer/generate.ts'

const CONTEXT = 8

/** pieces[i] is ids[i]'s text; BOS, EOS and PAD read as ''. Joined, they give dec(ids, { rmSpTks: true }). */
export function tokenPieces(tokenizer: TextCodec, ids: number[]): string[] {
  const dec = (part: number[]) => tokenizer.dec(part, { rmSpTks: true })
  const pieces = ids.map((id, i) => {
    const context = ids.slice(Math.max(0, i - CONTEXT), i)
    const before = dec(context)
    const withIt = dec([...context, id])
    return withIt.startsWith(before) ? withIt.slice(before.length) : dec([id])
  })
  // A whitespace token decodes to nothing at the end of a text; its space shows up at the start of the
  // next piece. Give it back, so that every token has something to hover.
  for (let i = 0; i + 1 < pieces.length; i++) {
    if (pieces[i] === '' && /^\s/.test(pieces[i + 1]) && /^\s*$/.test(tokenizer.dec([ids[i]]))) {
      pieces[i] = pieces[i + 1][0]
      pieces[i + 1] = pieces[i + 1].slice(1)
    }
  }
  return pieces
}
