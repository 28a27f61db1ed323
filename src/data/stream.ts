// Samples of a text file of any size, read lazily in chunks (node only): with lmWindows, a 100 MB corpus is
// never held in memory, as text or as ids.
import { closeSync, openSync, readSync } from 'node:fs'
import { normSample } from './corpora.ts'

function* lines(path: string, chunkBytes: number): Generator<string> {
  const fd = openSync(path, 'r')
  const buf = Buffer.alloc(chunkBytes)
  const decoder = new TextDecoder('utf-8')
  let rest = ''
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, chunkBytes, null)
      rest += decoder.decode(buf.subarray(0, n), { stream: n > 0 })
      const parts = rest.split('\n')
      rest = parts.pop()!
      yield* parts
      if (n === 0) break
    }
    if (rest !== '') yield rest
  } finally {
    closeSync(fd)
  }
}

/** Normalized non-empty samples, one per line or per blank-line-separated block. */
export function* streamTextSamples(path: string, sampleBy: 'line' | 'block' = 'line', chunkBytes = 1 << 20): Generator<string> {
  if (sampleBy === 'line') {
    for (const line of lines(path, chunkBytes)) {
      const s = normSample(line)
      if (s !== '') yield s
    }
    return
  }
  let block: string[] = []
  for (const line of lines(path, chunkBytes)) {
    if (line.trim() === '') {
      const s = normSample(block.join('\n'))
      if (s !== '') yield s
      block = []
    } else block.push(line)
  }
  const s = normSample(block.join('\n'))
  if (s !== '') yield s
}
