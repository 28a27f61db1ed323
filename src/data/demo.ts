// lmp's DemoDset: 'If you add {a} to {b} you get {a+b} .' for a, b in 0..99, a-major.
// train: a < b (4950), valid: a > b (4950, the commutative swaps), test: a == b (100). No download.
export const DEMO_VERSIONS = ['train', 'valid', 'test'] as const

export function demoSamples(ver: string): string[] {
  const out: string[] = []
  for (let a = 0; a < 100; a++) {
    for (let b = 0; b < 100; b++) {
      const split = a < b ? 'train' : a > b ? 'valid' : 'test'
      if (split === ver) out.push(`If you add ${a} to ${b} you get ${a + b} .`)
    }
  }
  return out
}
