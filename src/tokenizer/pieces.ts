// Each token's own text, as it reads in a generated or echoed text: what the token adds after the
// tokens before it. Joined, the texts of a sequence are its text (so OpenAI's logprobs `tokens` concatenate
// to the returned text and each `text_offset` points at its token). dec() cannot give this per token: it
// normalizes and strips the ends of what it decodes, so a lone space decodes to '' and a byte-level token
// that holds part of a character to U+FFFD.
//
// - character: the token's code point(s); a space is ' '.
// - whitespace: the word, after one ' ' when a word came before it (dec joins words with one space).
// - BPE: a word-final token ('to<eow>') carries its space after it ('to '), so it reads apart from the same
//   piece inside a word ('to').
// - gpt2: the token's bytes, decoded as UTF-8 as they complete characters: bytes of a character that is not
//   complete yet are held and read as part of the token that completes it, so no byte is lost.
// BOS, EOS and PAD add nothing (dec's rmSpTks); UNK reads '<unk>' as dec shows it.
// Browser-safe: no node: imports.
import { EOW_TK } from './bpe.ts'
import { LMP_SPECIAL_IDS, SPECIAL_TOKENS, UNK_TK, type SpecialIds } from './special.ts'

/** The tokenizer parts the decoders read (Tokenizer, VocabTokenizer, Gpt2Tokenizer). */
interface KnownTokenizer {
  readonly name: string
  readonly specialIds?: SpecialIds
  readonly id2tk?: string[]
  tokenBytes?(id: number): Uint8Array | null
  dec?(ids: number[]): string
}

/** Turns a stream of token ids into text, token by token. */
export interface TokenTextDecoder {
  /** The text `id` adds after the ids pushed so far; the id is then part of the context. */
  push(id: number): string
  /** What push(id) would return, without pushing it (for alternatives at the same position). */
  peek(id: number): string
  /** What push(id) and then flush() would return together: the text of a last token. */
  peekLast(id: number): string
  /** True when peek(id) leaves bytes held: the token ends inside a character. */
  holds(id: number): boolean
  /** Text for bytes still held at the end (U+FFFD per incomplete character, as dec gives); clears them. */
  flush(): string
  /** A name for `id` that no other id has: its text where that is whole, else the special token's name,
   * or OpenAI's `bytes:\xNN` spelling of a byte-level token. For listing alternatives apart. */
  label(id: number): string
}

/** What a tokenizer's special ids read as: BOS, EOS and PAD add no text (dec's rmSpTks); each has a name. */
interface Specials {
  isRemoved(id: number): boolean
  /** The special token's own text ('<eos>', '<|endoftext|>'), for ids that are special; else undefined. */
  name(id: number): string | undefined
  unk: number
}

function specialsOf(tk: KnownTokenizer): Specials {
  const ids = tk.specialIds ?? LMP_SPECIAL_IDS
  const names = new Map<number, string>()
  for (const [i, id] of [ids.bos, ids.eos, ids.pad, ids.unk].entries()) {
    if (!names.has(id)) names.set(id, tk.name === 'gpt2' && tk.dec ? tk.dec([id]) : SPECIAL_TOKENS[i])
  }
  return { isRemoved: (id) => id === ids.bos || id === ids.eos || id === ids.pad, name: (id) => names.get(id), unk: ids.unk }
}

/** A decoder for the tokenizer, or null when it is none of the four kinds (a test's bare codec). */
export function tokenTextDecoder(tokenizer: object): TokenTextDecoder | null {
  const tk = tokenizer as KnownTokenizer
  const sp = specialsOf(tk)
  if (tk.name === 'gpt2' && typeof tk.tokenBytes === 'function') return new ByteDecoder((id) => tk.tokenBytes!(id), sp)
  if (!Array.isArray(tk.id2tk)) return null
  const vocab = tk.id2tk
  const raw = (id: number) => (id === sp.unk ? UNK_TK : vocab[id] ?? UNK_TK)
  switch (tk.name) {
    case 'character':
      return new WordDecoder((id) => (sp.isRemoved(id) ? '' : raw(id)), raw, () => '', sp)
    case 'BPE':
      return new WordDecoder(
        (id) => (sp.isRemoved(id) ? '' : id === sp.unk ? `${UNK_TK} ` : raw(id).endsWith(EOW_TK) ? `${raw(id).slice(0, -EOW_TK.length)} ` : raw(id)),
        raw,
        () => '',
        sp,
      )
    case 'whitespace':
      return new WordDecoder((id) => (sp.isRemoved(id) ? '' : raw(id)), raw, (afterText) => (afterText ? ' ' : ''), sp)
    default:
      return null
  }
}

/** The texts of `ids` (each token's own text; joined, the text of the sequence). Null for unknown codecs. */
export function tokenTexts(tokenizer: object, ids: readonly number[]): string[] | null {
  const d = tokenTextDecoder(tokenizer)
  if (!d) return null
  const out = ids.map((id) => d.push(id))
  if (out.length) out[out.length - 1] += d.flush()
  return out
}

/**
 * A readable string per token for listings (/v1/tokenize, /v1/perplexity): its own text, or where that is
 * empty (special tokens, bytes of an unfinished character) decoder.label's name for it. Null for unknown codecs.
 */
export function tokenStrings(tokenizer: object, ids: readonly number[]): string[] | null {
  const d = tokenTextDecoder(tokenizer)
  if (!d) return null
  return ids.map((id) => {
    const label = d.label(id)
    const text = d.push(id)
    return text === '' ? label : text
  })
}

/** Vocabulary tokenizers: a token's text is fixed, after a separator that depends on whether text came before. */
class WordDecoder implements TokenTextDecoder {
  private afterText = false
  constructor(
    private readonly text: (id: number) => string,
    private readonly raw: (id: number) => string,
    private readonly separator: (afterText: boolean) => string,
    private readonly specials: Specials,
  ) {}
  peek(id: number): string {
    const t = this.text(id)
    return t === '' ? '' : this.separator(this.afterText) + t
  }
  push(id: number): string {
    const t = this.peek(id)
    if (t !== '') this.afterText = true
    return t
  }
  peekLast(id: number): string {
    return this.peek(id)
  }
  holds(): boolean {
    return false
  }
  flush(): string {
    return ''
  }
  label(id: number): string {
    return this.specials.name(id) ?? (this.peek(id) || this.raw(id))
  }
}

/** How many bytes a UTF-8 sequence that starts with `lead` has (1 for ASCII and for bytes that start none). */
function sequenceLength(lead: number): number {
  if (lead >= 0xf0 && lead <= 0xf4) return 4
  if (lead >= 0xe0 && lead <= 0xef) return 3
  if (lead >= 0xc2 && lead <= 0xdf) return 2
  return 1
}

/** Where the held part of `bytes` starts: the last sequence, if it is still short of bytes; else the end. */
function completeUpTo(bytes: Uint8Array): number {
  const n = bytes.length
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]
    if ((b & 0xc0) === 0x80) continue // a continuation byte: the sequence starts further back
    return sequenceLength(b) > back ? n - back : n
  }
  return n
}

/** Byte-level tokens: bytes are held until they complete a character. */
class ByteDecoder implements TokenTextDecoder {
  private held: Uint8Array = new Uint8Array(0)
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true })
  constructor(private readonly bytesOf: (id: number) => Uint8Array | null, private readonly specials: Specials) {}

  private step(id: number): { text: string; held: Uint8Array } {
    if (this.specials.isRemoved(id)) return { text: this.utf8.decode(this.held), held: new Uint8Array(0) }
    const own = this.bytesOf(id)
    if (!own) return { text: this.utf8.decode(this.held) + UNK_TK, held: new Uint8Array(0) }
    const all = new Uint8Array(this.held.length + own.length)
    all.set(this.held)
    all.set(own, this.held.length)
    const cut = completeUpTo(all)
    return { text: this.utf8.decode(all.subarray(0, cut)), held: all.slice(cut) }
  }
  peek(id: number): string {
    return this.step(id).text
  }
  peekLast(id: number): string {
    const { text, held } = this.step(id)
    return text + this.utf8.decode(held)
  }
  holds(id: number): boolean {
    return this.step(id).held.length > 0
  }
  push(id: number): string {
    const { text, held } = this.step(id)
    this.held = held
    return text
  }
  flush(): string {
    const text = this.utf8.decode(this.held)
    this.held = new Uint8Array(0)
    return text
  }
  label(id: number): string {
    const own = this.bytesOf(id)
    if (!own) return this.specials.name(id) ?? UNK_TK
    const whole = this.held.length === 0 && completeUpTo(own) === own.length && !this.utf8.decode(own).includes('\uFFFD')
    return whole ? this.utf8.decode(own) : `bytes:${Array.from(own, (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}`
  }
}

/**
 * OpenAI's top_logprobs object for one position: each alternative under its text at that position, the
 * chosen token under `chosenText` (its entry in `tokens`, so a client can compare the two). An alternative
 * whose text is empty, incomplete or already taken is listed under decoder.label(id) instead, so distinct
 * tokens never overwrite each other. Call before pushing the chosen token.
 */
export function topLogprobsObject(
  decoder: TokenTextDecoder,
  chosen: { tokenId: number; text: string; logprob: number },
  alternatives: readonly { tokenId: number; logprob: number }[],
): Record<string, number> {
  const out: Record<string, number> = {}
  const put = (key: string, value: number, id: number) => {
    let k = key
    if (k in out || (id !== chosen.tokenId && k === chosen.text)) k = decoder.label(id)
    if (k in out) k = `token_id:${id}` // vLLM's spelling; only two tokens that print alike even labelled get here
    out[k] = value
  }
  for (const alt of alternatives) {
    if (alt.tokenId === chosen.tokenId) {
      put(chosen.text, chosen.logprob, alt.tokenId)
      continue
    }
    const text = decoder.peek(alt.tokenId)
    put(text === '' || decoder.holds(alt.tokenId) ? decoder.label(alt.tokenId) : text, alt.logprob, alt.tokenId)
  }
  // OpenAI always lists the chosen token, so there may be logprobs + 1 entries.
  if (!alternatives.some((a) => a.tokenId === chosen.tokenId)) put(chosen.text, chosen.logprob, chosen.tokenId)
  return out
}

/**
 * The page's score view, `lmp tknz-txt --json` and `eval-txt-ppl --per-token` show a scored text token by
 * token with these: tokenTexts where the tokenizer is one of the four kinds (so they read as the API's
 * logprobs tokens do), else each id decoded alone. pieces.length === ids.length.
 */
export function tokenPieces(tokenizer: { dec(ids: number[]): string }, ids: number[]): string[] {
  return tokenTexts(tokenizer, ids) ?? ids.map((id) => tokenizer.dec([id]))
}
