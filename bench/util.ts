// Helpers shared by the benchmarks: medians and the JSON-line record every benchmark prints.
import { cpus } from 'node:os'

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** One JSON line: the benchmark's name, its numbers, and where it ran. */
export function report(bench: string, fields: Record<string, unknown>) {
  console.log(JSON.stringify({ bench, ...fields, node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, date: new Date().toISOString() }))
}
