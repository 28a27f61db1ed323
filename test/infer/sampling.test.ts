import t from 'tap'
import { LmpError } from '../../src/errors.ts'
import { createRng, type Rng } from '../../src/infer/rng.ts'
import {
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  argmax,
  checkSampling,
  drawFromLogits,
  logSoftmax,
  logSumExp,
  maskSpecialTokens,
  methodSampling,
  pickToken,
  softmax,
  topLogprobs,
} from '../../src/infer/sampling.ts'

const NEG = -Infinity
const f32 = (xs: number[]) => Float32Array.from(xs)
const fixedRng = (...us: number[]): Rng => ({ seed: 0, next: () => us.shift()!, nextUint32: () => 0 })

t.test('options: defaults and one-line errors for out-of-range values', async (t) => {
  t.same(checkSampling(), { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 })
  t.same(checkSampling({ temperature: 0, topK: 3, topP: 0.5, repetitionPenalty: 1.2 }), {
    temperature: 0, topK: 3, topP: 0.5, repetitionPenalty: 1.2,
  })
  const bad: [object, RegExp][] = [
    [{ temperature: -0.1 }, /^temperature must be a number >= 0/],
    [{ temperature: NaN }, /^temperature/],
    [{ temperature: Infinity }, /^temperature/],
    [{ topK: -1 }, /^top_k must be an integer >= 0/],
    [{ topK: 1.5 }, /^top_k/],
    [{ topP: 0 }, /^top_p must be a number in \(0, 1\]/],
    [{ topP: 1.01 }, /^top_p/],
    [{ topP: '0.5' }, /^top_p/],
    [{ repetitionPenalty: 0 }, /^repetition_penalty must be a number > 0/],
    [{ repetitionPenalty: -1 }, /^repetition_penalty/],
  ]
  for (const [opts, message] of bad) {
    t.throws(() => checkSampling(opts), { constructor: LmpError, message }, JSON.stringify(opts))
    t.notMatch(String((() => { try { checkSampling(opts) } catch (e) { return (e as Error).message } })()), /\n/)
  }
})

t.test("lmp's method names", async (t) => {
  t.same(methodSampling('top-1'), { temperature: 0 })
  t.same(methodSampling('top-K'), { topK: 5 }) // lmp's default k
  t.same(methodSampling('top-K', { k: 2 }), { topK: 2 })
  t.same(methodSampling('top-P'), { topP: 0.9 }) // lmp's default p
  t.same(methodSampling('top-P', { p: 0 }), { topK: 1 })
  t.throws(() => methodSampling('top-k'), { constructor: LmpError, message: /unknown inference method 'top-k'/ })
  t.throws(() => methodSampling('top-K', { k: 0 }), { constructor: LmpError, message: /^k must be an integer >= 1/ })
  t.throws(() => methodSampling('top-P', { p: 1.5 }), { constructor: LmpError, message: /^p must be a number in \[0, 1\]/ })
})

t.test('special tokens BOS, PAD, UNK are masked; EOS is not', async (t) => {
  const x = f32([5, 5, 5, 5, 1])
  maskSpecialTokens(x)
  t.same(Array.from(x), [NEG, 5, NEG, NEG, 1])
})

t.test('repetition penalty: positive logits divided, negative multiplied, only for seen ids', async (t) => {
  const x = f32([2, -2, 1, 3, 0])
  applyRepetitionPenalty(x, new Set([0, 1, 4, 99]), 2)
  t.same(Array.from(x), [1, -4, 1, 3, 0])
  const y = f32([2, -2])
  applyRepetitionPenalty(y, [0, 1], 0.5) // < 1 encourages repetition
  t.same(Array.from(y), [4, -1])
})

t.test('temperature divides every logit, shifted so that the largest is 0', async (t) => {
  const x = f32([1, 2, -4])
  applyTemperature(x, 2)
  t.same(Array.from(x), [-0.5, 0, -3])
})

t.test('a tiny temperature tends to greedy: no overflow to +Infinity (issue 13, fault 5)', async (t) => {
  // Divided as they were, 1e-39 turned every positive logit into +Infinity and the draw was uniform among them.
  const row = f32([0, 0, 0, 0, 2.5, 3, 1, 2.9])
  for (const temperature of [1e-39, 1e-45, 1e-30, 1e-7, Number.MIN_VALUE]) {
    const x = row.slice()
    applyTemperature(x, temperature)
    t.equal(x[5], 0, `${temperature}: the largest stays 0`)
    t.ok(Array.from(x).every((v, i) => i === 5 || v < 0), `${temperature}: every other logit is below it`)
    const picks = new Set<number>()
    for (let seed = 0; seed < 50; seed++) picks.add(pickToken(row, checkSampling({ temperature }), [], createRng(seed)))
    t.same([...picks], [5], `${temperature}: 50 seeds all pick the argmax`)
  }
})

t.test('top-k keeps the k largest, ties with the k-th included', async (t) => {
  const x = f32([1, 3, 2, 0.5, 2.5])
  applyTopK(x, 2)
  t.same(Array.from(x), [NEG, 3, NEG, NEG, 2.5])
  const tied = f32([5, 4, 4, 1])
  applyTopK(tied, 2)
  t.same(Array.from(tied), [5, 4, 4, NEG])
  const off = f32([1, 2])
  applyTopK(off, 0)
  applyTopK(off, 5)
  t.same(Array.from(off), [1, 2])
})

t.test('top-p keeps the smallest set reaching p, including the token that crosses it', async (t) => {
  const logits = () => f32([Math.log(0.2), Math.log(0.5), Math.log(0.3)])
  const cases: [number, number[]][] = [
    [0.4, [1]], // 0.5 alone crosses 0.4
    [0.6, [1, 2]], // 0.5 < 0.6, 0.5+0.3 crosses: the 0.3 token is kept
    [0.79, [1, 2]],
    [0.81, [0, 1, 2]],
    [1, [0, 1, 2]],
  ]
  for (const [p, kept] of cases) {
    const x = logits()
    applyTopP(x, p)
    t.same([0, 1, 2].filter((i) => x[i] > NEG), kept, `p=${p}`)
  }
  // Equal probabilities: the lower ids are taken first.
  const flat = f32([0, 0, 0, 0])
  applyTopP(flat, 0.5)
  t.same(Array.from(flat), [0, 0, NEG, NEG])
  const flat2 = f32([0, 0, 0, 0])
  applyTopP(flat2, 0.3)
  t.same(Array.from(flat2), [0, 0, NEG, NEG], '0.25 < 0.3: the crossing second token is kept')
})

t.test('argmax: first index wins ties', async (t) => {
  t.equal(argmax([1, 3, 3, 2]), 1)
  t.equal(argmax([NEG, NEG, 0]), 2)
})

t.test('the draw walks the cumulative distribution with one uniform number', async (t) => {
  const x = f32([Math.log(0.5), Math.log(0.3), Math.log(0.2)])
  t.equal(drawFromLogits(x, fixedRng(0.1)), 0)
  t.equal(drawFromLogits(x, fixedRng(0.6)), 1)
  t.equal(drawFromLogits(x, fixedRng(0.85)), 2)
  t.equal(drawFromLogits(f32([NEG, 0, NEG]), fixedRng(0.999)), 1, 'masked tokens are never drawn')
  t.equal(drawFromLogits(f32([0, NEG, NEG]), fixedRng(0.9999999)), 0)
  t.equal(drawFromLogits(f32([Infinity, 0, Infinity]), fixedRng(0.75)), 2, 'overflowing logits do not give NaN')
})

t.test('sampled frequencies follow the distribution', async (t) => {
  const rng = createRng(7)
  const x = f32([Math.log(0.5), Math.log(0.3), Math.log(0.2)])
  const counts = [0, 0, 0]
  const n = 20000
  for (let i = 0; i < n; i++) counts[drawFromLogits(x, rng)]++
  t.ok(Math.abs(counts[0] / n - 0.5) < 0.015, `${counts}`)
  t.ok(Math.abs(counts[1] / n - 0.3) < 0.015, `${counts}`)
  t.ok(Math.abs(counts[2] / n - 0.2) < 0.015, `${counts}`)
})

t.test('pickToken: the pipeline and its order', async (t) => {
  const greedy = checkSampling({ temperature: 0 })
  // The model's favourite is BOS, then UNK, then PAD: all masked, EOS (id 1) is allowed.
  t.equal(pickToken([9, 5, 8, 8.5, 4], greedy, [], createRng(1)), 1)
  t.equal(pickToken([9, 1, 8, 8.5, 4, 4], greedy, [], createRng(1)), 4, 'greedy ties: first index')
  // Repetition penalty runs before the choice: seen id 4 (5 → 2.5) loses to id 5 (4).
  const penalised = checkSampling({ topK: 1, repetitionPenalty: 2 })
  t.equal(pickToken([0, 0, 0, 0, 5, 4], penalised, new Set([4]), createRng(1)), 5)
  t.equal(pickToken([0, 0, 0, 0, 5, 4], checkSampling({ topK: 1 }), new Set([4]), createRng(1)), 4)
  // The input row is not modified.
  const row = f32([1, 2, 3, 4, 5])
  pickToken(row, checkSampling({ topK: 2, topP: 0.5, temperature: 0.7 }), [4], createRng(1))
  t.same(Array.from(row), [1, 2, 3, 4, 5])
  // Top-p sees the distribution after top-k: ids 4, 5, 6 have 0.45, 0.30, 0.25; top-2 renormalises to
  // 0.6/0.4 and p = 0.5 keeps id 4 alone (top-p first would have kept 4 and 5).
  const x = [-50, -50, -50, -50, Math.log(0.45), Math.log(0.3), Math.log(0.25)]
  const drawn = (o: Parameters<typeof checkSampling>[0]) => {
    const opts = checkSampling(o)
    const ids = new Set<number>()
    for (let seed = 1; seed <= 200; seed++) ids.add(pickToken(x, opts, [], createRng(seed)))
    return [...ids].sort()
  }
  t.same(drawn({ topK: 2, topP: 0.5 }), [4])
  t.same(drawn({ topP: 0.5 }), [4, 5], '0.45 < 0.5: the crossing token is in the set')
  // Temperature before top-p: at 100 the three are near 1/3 each, so p = 0.4 needs two tokens.
  t.same(drawn({ topP: 0.4 }), [4])
  t.same(drawn({ temperature: 100, topP: 0.4 }), [4, 5])
  t.same(drawn({}), [4, 5, 6])
})

t.test('same seed, same draws', async (t) => {
  const x = Array.from({ length: 50 }, (_, i) => Math.sin(i))
  const opts = checkSampling({ temperature: 1.3, topK: 20, topP: 0.95 })
  const run = (seed: number) => {
    const rng = createRng(seed)
    return Array.from({ length: 40 }, () => pickToken(x, opts, [], rng))
  }
  t.same(run(42), run(42))
  t.notSame(run(42), run(43))
})

t.test('log-softmax helpers', async (t) => {
  const row = [0, Math.log(3)]
  t.ok(Math.abs(logSumExp(row) - Math.log(4)) < 1e-12)
  const lp = logSoftmax(row)
  t.ok(Math.abs(lp[0] - Math.log(0.25)) < 1e-12 && Math.abs(lp[1] - Math.log(0.75)) < 1e-12)
  t.ok(Math.abs(logSumExp([1000, 1000]) - (1000 + Math.LN2)) < 1e-9, 'stable for large logits')
  const p = softmax([0, Math.log(3)])
  t.same(Array.from(p).map((v) => +v.toFixed(12)), [0.25, 0.75])
  const top = topLogprobs([1, 3, 3, 2, NEG], 3)
  t.same(top.map((e) => e.tokenId), [1, 2, 3])
  t.ok(Math.abs(top[0].logprob - (3 - logSumExp([1, 3, 3, 2, NEG]))) < 1e-12)
  t.same(topLogprobs([1, 2], 5).map((e) => e.tokenId), [1, 0])
  t.same(topLogprobs([1, 2], 0), [])
})
