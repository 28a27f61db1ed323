// The TF.js model behind the same StepModel interface as the ONNX runtimes, so one generation and
// scoring loop (src/infer) runs on both and the consistency tests compare like with like.
import * as tf from '@tensorflow/tfjs-core'
import type { Manifest, State, StepModel } from '../src/infer/types.ts'
import { forwardTf, type LanguageModel } from './lm.ts'
import { TfOps } from './tf-ops.ts'

export function tfStepModel(model: LanguageModel, weights: Record<string, { shape: number[]; data: Float32Array }>, manifest: Manifest): StepModel {
  const params: Record<string, tf.Tensor> = {}
  for (const [name, w] of Object.entries(weights)) params[name] = tf.tensor(w.data, w.shape)
  const o = new TfOps(params)
  return {
    manifest,
    initState(batch: number): State {
      return model.stateSpec().map((s) => ({ dims: [batch, s.size], data: new Float32Array(batch * s.size) }))
    },
    async forward(ids: number[][], state: State) {
      return tf.tidy(() => {
        const { logits, state: next } = forwardTf(model, o, ids, state.map((s) => tf.tensor(s.data, s.dims)))
        // Per-step logits [batch, vocab] → [batch, steps, vocab], as the ONNX graph returns them.
        const stacked = tf.stack(logits, 1)
        return {
          logits: stacked.dataSync() as Float32Array,
          state: next.map((t) => ({ data: t.dataSync() as Float32Array, dims: t.shape })),
        }
      })
    },
    async release() {
      for (const t of Object.values(params)) t.dispose()
    },
  }
}
