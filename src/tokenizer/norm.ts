// Text normalization with lmp's exact semantics (browser-safe).
// lmp: re.sub(r'\s+', ' ', unicodedata.normalize('NFKC', txt)).strip(), then .lower() if uncased.
// JS `\s` is not Python's `\s`: Python includes U+001C–U+001F and U+0085 and excludes U+FEFF, so the
// class is spelled out here.

/** Python 3's `str.isspace()` code points (the set `\s` and `str.strip()` use). */
export const PY_WHITESPACE = '\\u0009-\\u000D\\u001C-\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000'

export const WS_RUN = new RegExp(`[${PY_WHITESPACE}]+`, 'g') // all BMP: no 'u' flag needed (it is slower)
// Only the runs that are not already one ' ' (a 1 MB text has ~200k single spaces: leaving them is 3× faster).
const WS_TO_COLLAPSE = new RegExp(`[${PY_WHITESPACE}]{2,}|[${PY_WHITESPACE.replace('\\u001C-\\u0020', '\\u001C-\\u001F')}]`, 'g')

/** Python's `str.lower()`: like JS toLowerCase but without the context-dependent final sigma rule. */
export function pyLower(txt: string): string {
  return txt.replace(/\u03A3/g, '\u03C3').toLowerCase()
}

export function normText(txt: string, isUncased: boolean): string {
  let out = txt.normalize('NFKC').replace(WS_TO_COLLAPSE, ' ')
  // every whitespace run is one ' ' now, so stripping is at most one character per end
  if (out.startsWith(' ')) out = out.slice(1)
  if (out.endsWith(' ')) out = out.slice(0, -1)
  return isUncased ? pyLower(out) : out
}
