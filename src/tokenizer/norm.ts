// Text normalization with lmp's exact semantics (browser-safe).
// lmp: re.sub(r'\s+', ' ', unicodedata.normalize('NFKC', txt)).strip(), then .lower() if uncased.
// JS `\s` is not Python's `\s`: Python includes U+001C–U+001F and U+0085 and excludes U+FEFF, so the
// class is spelled out here.

/** Python 3's `str.isspace()` code points (the set `\s` and `str.strip()` use). */
export const PY_WHITESPACE = '\\u0009-\\u000D\\u001C-\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000'

export const WS_RUN = new RegExp(`[${PY_WHITESPACE}]+`, 'gu')
const WS_EDGES = new RegExp(`^[${PY_WHITESPACE}]+|[${PY_WHITESPACE}]+$`, 'gu')

/** Python's `str.lower()`: like JS toLowerCase but without the context-dependent final sigma rule. */
export function pyLower(txt: string): string {
  return txt.replace(/\u03A3/g, '\u03C3').toLowerCase()
}

export function normText(txt: string, isUncased: boolean): string {
  const out = txt.normalize('NFKC').replace(WS_RUN, ' ').replace(WS_EDGES, '')
  return isUncased ? pyLower(out) : out
}
