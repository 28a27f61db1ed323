// Shared by the tokenizer tests.
import fc from 'fast-check'
import type { Test } from 'tap'
import { LmpError } from '../../src/errors.ts'

/** tap matches an error class by name, and LmpError does not set one: check instanceof instead. */
export function throwsLmp(t: Test, fn: () => unknown, msg?: RegExp) {
  try {
    fn()
    t.fail('expected an LmpError')
  } catch (err) {
    t.ok(err instanceof LmpError, `LmpError: ${(err as Error).message}`)
    if (msg) t.match((err as Error).message, msg)
  }
}

/** Every code point Python or JavaScript calls whitespace (U+FEFF is JS-only). */
export const WHITESPACE = [...'\t\n\v\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff']

/** Random text over what makes tokenizers go wrong: astral characters, combining marks, whitespace, specials. */
export const nastyText = fc.array(
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: 4 }),
    fc.constantFrom(...WHITESPACE),
    fc.constantFrom('\u0301', '\u0308', '\u20dd', 'e\u0301', '\u1100\u1161', '😀', '𝔘', '\u{10ffff}', 'ﬁ', '①', 'ΟΣ'),
    fc.constantFrom('<bos>', '<eos>', '<pad>', '<unk>', '<', '>', 'bos', '<eow>'),
  ),
  { maxLength: 12 },
).map((parts) => parts.join(''))

/** 65,536 distinct characters (CJK and beyond, no surrogates). */
export function manyDistinctChars(): string {
  const all: string[] = []
  for (let cp = 0x4e00; all.length < 65536; cp++) if (cp < 0xd800 || cp > 0xdfff) all.push(String.fromCodePoint(cp))
  return all.join('')
}
