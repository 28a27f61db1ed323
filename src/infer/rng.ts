// A small seeded PRNG (xoshiro128**, seeded through splitmix32) written with 32-bit integer arithmetic
// only, so the same seed gives the same draws in Node and in every browser. Math.random cannot be seeded.

export interface Rng {
  /** The seed this generator was made from (a random one when none was given). */
  readonly seed: number
  /** A uniform draw in [0, 1) with 32 bits of resolution. */
  next(): number
  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number
}

/** xoshiro128** over a 4-word state, updated in place (exported so the reference vectors can be tested). */
export function xoshiro128ss(s: Uint32Array): number {
  const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0
  const t = s[1] << 9
  s[2] ^= s[0]
  s[3] ^= s[1]
  s[1] ^= s[2]
  s[0] ^= s[3]
  s[2] ^= t
  s[3] = rotl(s[3], 11)
  return result
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

/** splitmix32 step: spreads a counter into well-mixed words, so nearby seeds give unrelated streams. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0
  let z = x
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad)
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97)
  return (z ^ (z >>> 15)) >>> 0
}

/** A fresh random seed (a 32-bit unsigned integer), for generations that were not given one. */
export function randomSeed(): number {
  const c = (globalThis as { crypto?: { getRandomValues?(a: Uint32Array): Uint32Array } }).crypto
  if (c?.getRandomValues) return c.getRandomValues(new Uint32Array(1))[0]
  return Math.floor(Math.random() * 2 ** 32)
}

/**
 * A generator from a seed. Any finite number is accepted: its low and high 32-bit words (of the integer
 * part) both feed the state, so seeds beyond 2^32 (an OpenAI-style 64-bit seed) still differ.
 */
export function createRng(seed: number = randomSeed()): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`)
  const whole = Math.trunc(seed)
  const lo = whole >>> 0
  const hi = Math.floor(whole / 2 ** 32) >>> 0
  const state = new Uint32Array(4)
  let x = lo ^ splitmix32(hi)
  for (let i = 0; i < 4; i++) {
    state[i] = splitmix32(x)
    x = (x + 0x9e3779b9) | 0
  }
  if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1 // the all-zero state is a fixed point
  return {
    seed,
    nextUint32: () => xoshiro128ss(state),
    next: () => xoshiro128ss(state) / 2 ** 32,
  }
}
