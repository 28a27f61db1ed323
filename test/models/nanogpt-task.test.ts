// nanoGPT's character task (`--task nanogpt`): the raw split and its vocabulary on Tiny Shakespeare, newlines
// that round-trip, random windows of the stream, and the two validation losses (the eval_iters estimate and
// the full pass) by their definitions; then the trainer on the task, resumed exactly.
import t from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { initBackend } from '../../models/backend.ts'
import { createModel, initWeights, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { fullPassWindows, randomWindows, streamIds } from '../../models/data-order.ts'
import { streamLoss, sumLoss } from '../../models/stream-eval.ts'
import { train, type TrainConfig } from '../../models/train.ts'
import { loadRawText } from '../../src/data/index.ts'
import { createRng } from '../../src/infer/rng.ts'
import { createTokenizer, IGNORE_INDEX, tokenizerFromJSON } from '../../src/tokenizer/index.ts'

await initBackend()
const shakespeare = fileURLToPath(new URL('../../../shared/data/tinyshakespeare/input.txt', import.meta.url))
const haveShakespeare = existsSync(shakespeare)

t.test('Tiny Shakespeare as nanoGPT reads it: 1,003,854 / 111,540 raw characters, 65 symbols', { skip: haveShakespeare ? false : `no copy at ${shakespeare}` }, async (t) => {
  const trainText = await loadRawText('tiny-shakespeare', 'train', { dataPath: shakespeare })
  const validText = await loadRawText('tiny-shakespeare', 'valid', { dataPath: shakespeare })
  t.equal(trainText.length, 1_003_854)
  t.equal(validText.length, 111_540)
  t.equal(trainText + validText, readFileSync(shakespeare, 'utf8'), 'the two splits are the file, in order, unchanged')
  const tk = createTokenizer('character', { isRaw: true } as object)
  tk.buildVocab([trainText])
  t.equal(tk.vocabSize - 4, 65, '65 symbols beside the 4 special ids (never inputs or targets in this task)')
  const ids = streamIds([trainText], tk)
  t.equal(ids.length, 1_003_854, 'one id per character, no BOS/EOS')
  t.equal(tk.dec(Array.from(ids.subarray(0, 200))), trainText.slice(0, 200), 'decodes back to the raw text, newlines included')
  t.ok(trainText.slice(0, 200).includes('\n'))
  const v = streamIds([validText], tk)
  t.notOk(v.includes(3), 'no <unk> in the validation stream')
})

t.test('a raw character tokenizer keeps every character and survives tokenizer.json', async (t) => {
  const text = 'First Citizen:\nBefore we proceed,  any further,\n\nhear <pad> me  speak.\n'
  const tk = createTokenizer('character', { isRaw: true } as object)
  tk.buildVocab([text])
  const ids = tk.enc(text)
  t.equal(ids.length, Array.from(text).length + 2, 'one id per character (and BOS/EOS): "<pad>" is five characters')
  t.equal(tk.dec(ids, { rmSpTks: true }), text, 'newlines and runs of spaces round-trip')
  const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tk.toJSON())))
  t.same(back.enc(text), ids, 'the same ids after tokenizer.json')
  t.equal(back.dec(ids, { rmSpTks: true }), text)
  const lmp = createTokenizer('character')
  lmp.buildVocab([text])
  t.not(lmp.dec(lmp.enc(text), { rmSpTks: true }), text, "lmp's tokenizer normalizes (the default is unchanged)")
  t.notOk('is_raw' in (lmp.toJSON() as object), "lmp's tokenizer.json is unchanged")
  t.throws(() => createTokenizer('character', { isRaw: true, isUncased: true } as object), /cannot be uncased/)
})

t.test('random windows: uniform starts in [0, n - L), targets the next ids, fixed by (seed, batch)', async (t) => {
  const ids = Int32Array.from({ length: 50 }, (_, i) => 10 + i)
  const c = { batchSize: 64, maxSeqLen: 8, seed: 5 }
  const a = randomWindows(ids, c)
  const starts = new Set<number>()
  let wrong = 0
  for (let k = 0; k < 20; k++) {
    const b = a.next()
    t.equal(b.inputs.length, 64)
    for (let r = 0; r < b.inputs.length; r++) {
      const s = b.inputs[r][0] - 10
      starts.add(s)
      const same = (x: number[], y: Int32Array) => x.length === y.length && x.every((v, i) => v === y[i])
      if (!same(b.inputs[r], ids.subarray(s, s + 8)) || !same(b.targets[r], ids.subarray(s + 1, s + 9))) wrong++
    }
  }
  t.equal(wrong, 0, 'each row is ids[i, i+8) and its targets ids[i+1, i+9)')
  t.same([...starts].sort((x, y) => x - y), Array.from({ length: 42 }, (_, i) => i), 'every start 0..n-L-1 drawn, none beyond')
  const b = randomWindows(ids, c)
  b.seek({ epoch: 0, cursor: 7 })
  const a2 = randomWindows(ids, c)
  for (let k = 0; k < 7; k++) a2.next()
  t.same(b.next(), a2.next(), 'seeking to batch 7 continues the same order')
  t.notSame(randomWindows(ids, { ...c, seed: 6 }).next(), randomWindows(ids, c).next(), 'another seed, other windows')
  t.throws(() => randomWindows(ids.subarray(0, 8), c), /shorter than max_seq_len \+ 1/)
})

t.test('the full pass predicts every token but the first exactly once', async (t) => {
  for (const n of [2, 9, 17, 33]) {
    const ids = Int32Array.from({ length: n }, (_, i) => 4 + i)
    const { inputs, targets } = fullPassWindows(ids, 8)
    t.same(targets.flat().filter((id) => id !== IGNORE_INDEX), Array.from(ids.subarray(1)), `n = ${n}`)
    inputs.forEach((row, w) => t.equal(row[0], ids[w * 8], 'windows start every max_seq_len ids'))
  }
})

t.test('validation losses by their definitions', async (t) => {
  const text = 'To be, or not to be, that is the question:\nWhether tis nobler in the mind to suffer\n'.repeat(3)
  const tk = createTokenizer('character', { isRaw: true } as object)
  tk.buildVocab([text])
  const ids = streamIds([text], tk)
  const model = createModel({ ...MODEL_DEFAULTS, model: 'Transformer', vocabSize: tk.vocabSize, dModel: 16, nHead: 2, dFf: 32, nLyr: 1, maxSeqLen: 16 } as ModelConfig)
  const rng = createRng(1)
  const init = initWeights(model, () => rng.next())
  const specs = model.params()
  const params: Record<string, tf.Tensor> = {}
  for (const [n, s] of Object.entries(specs)) params[n] = tf.tensor(init[n], s.shape)
  const c = { batchSize: 4, maxSeqLen: 16, evalIters: 3, seed: 11 }
  const got = streamLoss(model, params, ids, c)
  // nanoGPT: losses[k] = the mean loss of batch k; the estimate is losses.mean().
  const order = randomWindows(ids, c)
  let meanOfMeans = 0
  for (let k = 0; k < c.evalIters; k++) {
    const b = order.next()
    const s = sumLoss(model, params, b.inputs, b.targets)
    t.equal(s.count, c.batchSize * c.maxSeqLen, 'every position of a random window is a target')
    meanOfMeans += s.sum / s.count / c.evalIters
  }
  t.ok(Math.abs(got.estimate - meanOfMeans) < 1e-5, `estimate ${got.estimate} = mean of the batch means ${meanOfMeans}`)
  // The full pass: per-token losses of the whole stream, each target once, averaged.
  let sum = 0
  for (let i = 0; i + 1 < ids.length; i += 16) {
    const end = Math.min(i + 16, ids.length - 1)
    const s = sumLoss(model, params, [Array.from(ids.subarray(i, end))], [Array.from(ids.subarray(i + 1, end + 1))])
    sum += s.sum
  }
  t.ok(Math.abs(got.full - sum / (ids.length - 1)) < 1e-5, `full pass ${got.full} = mean over all ${ids.length - 1} targets`)
  t.ok(Math.abs(got.ppl - Math.exp(got.full)) < 1e-9)
  t.notOk(got.estimate === got.full, 'two different measures')
  for (const x of Object.values(params)) x.dispose()
})

t.test('the trainer on the task: random windows, both losses in metrics.jsonl, an exact resume', async (t) => {
  const text = 'ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n\n'.repeat(8)
  const tk = createTokenizer('character', { isRaw: true } as object)
  tk.buildVocab([text])
  const modelConfig = { ...MODEL_DEFAULTS, model: 'Transformer', vocabSize: tk.vocabSize, dModel: 16, nHead: 2, dFf: 32, nLyr: 1, maxSeqLen: 16 } as ModelConfig
  const trainConfig: TrainConfig = {
    batchSize: 4, lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, maxNorm: 1, maxSeqLen: 16, stride: 16,
    totalStep: 8, warmupStep: 2, ckptStep: 4, logStep: 1, seed: 3, evalStep: 4, randomWindows: true, evalIters: 2,
  }
  const run = async (dir: string, resume = false, stopAt = 0) => {
    const losses: number[] = []
    try {
      await train({ dir, modelConfig, trainConfig, tokenizer: tk, samples: [text], validSamples: [text.slice(0, 300)], quiet: true, resume,
        onStep: ({ step, loss }) => { losses[step] = loss; if (step === stopAt) throw new Error('killed') } })
    } catch (e) { if ((e as Error).message !== 'killed') throw e }
    return losses
  }
  const whole = mkdtempSync(join(tmpdir(), 'lmp-nano-'))
  const full = await run(whole)
  const evals = readFileSync(join(whole, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => 'valLoss' in r)
  t.same(evals.map((r) => r.step), [4, 8])
  t.ok(evals.every((r) => r.valLossEstimate > 0 && r.valLoss > 0 && Math.abs(r.valPpl - Math.exp(r.valLoss)) < 1e-6), 'valLoss (full pass), valPpl and valLossEstimate')
  t.ok(full[8] < full[1], `the loss falls: ${full[1].toFixed(3)} → ${full[8].toFixed(3)}`)
  const split = mkdtempSync(join(tmpdir(), 'lmp-nano-'))
  await run(split, false, 6)
  const resumed = await run(split, true)
  t.same(resumed.slice(5), full.slice(5), 'steps 5-8 after a resume from step 4: the same losses')
})
