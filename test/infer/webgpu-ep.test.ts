// onnxruntime-node's WebGPU execution provider (--device webgpu) against its CPU provider, for every
// architecture, on whatever adapter Dawn finds (SwiftShader in CI): logits for a whole sequence and for
// prefill-then-steps, and the carried state (LSTM cell and hidden state, key/value cache), within 1e-4
// (GPU_TOL), and the same greedy text. SwiftShader compiles a shader for every new shape, slowly: one row,
// and a prefill as long as the generation's prompt, keep the shapes few.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import { generateText } from '../../src/infer/generate.ts'
import { loadTokenizer } from '../../src/tokenizer/io.ts'
import type { State } from '../../src/infer/types.ts'
import { ARCHITECTURES } from '../helpers/architectures.ts'
import { GPU_TOL, logitsBothWays } from '../helpers/consistency.ts'
import { maxAbsDiff } from '../helpers/models.ts'
import { webgpuOrSkip } from '../helpers/webgpu.ts'
import { writeExportedModel } from '../server/exported-model.ts'

const PROMPT = 'If you add 1'
const TEXT = 'If you add 13 to 41 you get 54 .'

const stateDiff = (a: State, b: State) => Math.max(...a.map((s, i) => (s.dims.join() === b[i].dims.join() ? maxAbsDiff(s.data, b[i].data) : Infinity)))

if (await webgpuOrSkip(t)) {
  const root = t.testdir({})
  for (const [i, a] of ARCHITECTURES.entries()) {
    t.test(`${a.name}: WebGPU EP = CPU EP`, async (t) => {
      const { dir, manifest } = await writeExportedModel(root, a.name, 21 + i, a.sizes)
      const bytes = new Uint8Array(readFileSync(path.join(dir, 'onnx', 'model.onnx')))
      const tokenizer = loadTokenizer(path.join(dir, 'onnx', 'lmp_tokenizer.json'))
      const cpu = await loadOrtModel(ort as never, bytes, manifest)
      const gpu = await loadOrtModel(ort as never, bytes, manifest, { executionProviders: ['webgpu'] })
      const ids = [tokenizer.enc(TEXT)]
      const split = tokenizer.enc(PROMPT).length - 1 // generate's prompt: BOS and the text, no EOS
      const want = await logitsBothWays(cpu, ids, split)
      const got = await logitsBothWays(gpu, ids, split)
      const dWhole = maxAbsDiff(want.whole, got.whole)
      const dStep = maxAbsDiff(want.stepped, got.stepped)
      const dState = stateDiff(want.state, got.state)
      t.ok(dWhole <= GPU_TOL, `whole sequence: max |Δlogit| ${dWhole.toExponential(2)} <= ${GPU_TOL}`)
      t.ok(dStep <= GPU_TOL, `prefill then steps: max |Δlogit| ${dStep.toExponential(2)} <= ${GPU_TOL}`)
      t.ok(dState <= GPU_TOL, `carried state after the steps: max |Δ| ${dState.toExponential(2)} <= ${GPU_TOL}`)
      const whole = stateDiff((await cpu.forward(ids, cpu.initState(1))).state, (await gpu.forward(ids, gpu.initState(1))).state)
      t.ok(whole <= GPU_TOL, `state after the whole sequence: max |Δ| ${whole.toExponential(2)}`)
      const greedy = { maxNewTokens: 16, temperature: 0 }
      const [a1, b1] = [await generateText(cpu, tokenizer, PROMPT, greedy), await generateText(gpu, tokenizer, PROMPT, greedy)]
      t.ok(a1.tokenIds.length > 0)
      t.same(b1.tokenIds, a1.tokenIds, `greedy text equals the CPU EP's: ${JSON.stringify(b1.text)}`)
      await cpu.release?.()
      await gpu.release?.()
    })
  }
}
