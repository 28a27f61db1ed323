// `lmp export-onnx`: write exp/NAME/onnx/{model.onnx, manifest.json, lmp_tokenizer.json} from a checkpoint,
// and for a Transformer Hugging Face's files in exp/NAME (onnx/export.ts exportToDir).
import type { Command } from './index.ts'
import { join } from 'node:path'
import { loadCheckpoint, openExperiment } from './common.ts'
import { removeTempFiles } from '../io/atomic.ts'
import { withFolderLock } from '../io/lock.ts'

export const command: Command = {
  spec: {
    name: 'export-onnx',
    summary: 'Export a checkpoint to one ONNX graph (opset 17) for scoring and generation.',
    options: {
      'exp-name': { type: 'string', default: 'my_model_exp', help: 'experiment name' },
      ckpt: { type: 'int', default: -1, min: -1, help: 'checkpoint step (-1: latest)' },
    },
  },
  async run({ options: o }) {
    const exp = openExperiment(o.expName)
    // A training run writes the same folder (and exports at its end): one writer at a time.
    await withFolderLock(exp.dir, 'lmp export-onnx', async () => {
      removeTempFiles(join(exp.dir, 'onnx'))
      const { model, weights, step } = await loadCheckpoint(exp, o.ckpt)
      const { exportToDir } = await import('../../onnx/export.ts')
      const { dir, manifest } = await exportToDir(model, weights, exp.dir, step, { tokenizer: exp.tokenizer })
      console.log(`exported checkpoint ${step} of ${exp.name} (${manifest.architecture}) to ${dir}`)
    })
  },
}
