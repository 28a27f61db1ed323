// The TF.js model behind the same StepModel interface as the ONNX runtimes, so one generation and
// scoring loop (src/infer) runs on both and the consistency tests compare like with like.
import * as tf from '@tensorflow/tfjs-core'
import type { Manifest, State, StepModel } from '../src/infer/types.ts'
import { forwardTf, type LanguageModel } from './lm.ts'
import { TfOps } from './tf-ops.ts'
import { zeroState } from '../src/infer/ort-model.ts'


export function tfStepModel(model: LanguageModel, weights: Record<string, { shape: number[]; data: Float32Array }>, manifest: Manifest): StepModel {
  const params: Record<string, tf.Tensor> = {}
  for (const [name, w] of Object.entries(weights)) params[name] = tf.tensor(w.data, w.shape)
  const o = new TfOps(params)
  return {
    manifest,
    initState: (batch: number) => zeroState(manifest, batch),
    async forward(ids: number[][], state: State, pastPadding?: number[]) {
      return tf.tidy(() => {
        const { logits, state: next } = forwardTf(model, o, ids, state.map((s) => tf.tensor(s.data, s.dims)), pastPadding)
        // Recurrent models give per-step logits [batch, vocab]: stacked to [batch, steps, vocab] as the
        // ONNX graph returns them. The Transformer's are [batch, steps, vocab] already.
        const all = Array.isArray(logits) ? tf.stack(logits, 1) : logits
        return {
          logits: all.dataSync() as Float32Array,
          state: next.map((t) => ({ data: t.dataSync() as Float32Array, dims: t.shape })),
        }
      })
    },
    async release() {
      for (const t of Object.values(params)) t.dispose()
    },
  }
}
