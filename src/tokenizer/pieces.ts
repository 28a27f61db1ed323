// How each token of an encoded text reads in the decoded text: the page's score view colours the text token
// by token with it, and `lmp tknz-txt --json` prints it. dec() normalizes and strips the ends of what it
// decodes, so a token's piece is what it adds to the decoded text of the CONTEXT tokens before it (as the
// generation loop streams text). Browser-safe.
import type { Tokenizer } from './index.ts'

const CONTEXT = 8
// What a byte-level tokenizer (gpt2) decodes an incomplete UTF-8 sequence to: such a character belongs to
// the token that completes it, as in generate.ts's streamed text.
const TRAILING_REPLACEMENTS = /\uFFFD+$/

/**
 * pieces[i] is ids[i]'s text; BOS, EOS and PAD read as '', a token that ends inside a character (a gpt2
 * token holding part of an emoji's bytes) reads as '' and the character goes to the token that completes
 * it. Joined, the pieces give dec(ids, { rmSpTks: true }). Cost: O(ids.length) decodes of CONTEXT tokens.
 */
export function tokenPieces(tokenizer: Pick<Tokenizer, 'dec'>, ids: number[]): string[] {
  const dec = (part: number[]) => tokenizer.dec(part, { rmSpTks: true })
  const pieces = ids.map((id, i) => {
    const context = ids.slice(Math.max(0, i - CONTEXT), i)
    const before = dec(context).replace(TRAILING_REPLACEMENTS, '')
    let withIt = dec([...context, id])
    if (i < ids.length - 1) withIt = withIt.replace(TRAILING_REPLACEMENTS, '')
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
