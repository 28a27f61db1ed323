// Streaming a 100 MB text file through lmWindows: windows/s and peak RSS (must stay far under 1 GB),
// because samples are read in chunks and encoded one at a time.
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lmWindows } from '../src/data/index.ts'
import { streamTextSamples } from '../src/data/stream.ts'
import { createTokenizer } from '../src/tokenizer/index.ts'
import { report } from './util.ts'

const MB = Number(process.env.BENCH_DATA_MB ?? 100)
const shakespeare = readFileSync(new URL('../../shared/data/tinyshakespeare/input.txt', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'lmp-bench-'))
const path = join(dir, 'big.txt')
try {
  const fd = openSync(path, 'w')
  let written = 0
  while (written < MB * 1e6) written += writeSync(fd, shakespeare)
  closeSync(fd)

  const tk = createTokenizer('character')
  tk.buildVocab([shakespeare.toString('utf8')])
  const rss0 = process.memoryUsage().rss
  let peak = rss0
  let windows = 0, tokens = 0
  const t0 = performance.now()
  for (const w of lmWindows(streamTextSamples(path, 'line'), tk, 64, 64)) {
    windows++
    tokens += w.cur.length
    if ((windows & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().rss)
  }
  const secs = (performance.now() - t0) / 1000
  peak = Math.max(peak, process.memoryUsage().rss)
  report('data-windows', {
    file_mb: +(written / 1e6).toFixed(1), max_seq_len: 64, stride: 64, windows, seconds: +secs.toFixed(1),
    windows_per_s: Math.round(windows / secs), mb_per_s: +((written / 1e6) / secs).toFixed(1),
    rss_start_mb: Math.round(rss0 / 2 ** 20), rss_peak_mb: Math.round(peak / 2 ** 20), rss_under_1gb: peak < 2 ** 30,
  })
} finally {
  rmSync(dir, { recursive: true, force: true })
}
