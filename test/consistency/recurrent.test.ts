// TF.js, onnxruntime-node and onnxruntime-web (in Node) agree on every recurrent architecture: logits of a
// whole sequence and of prefill-then-steps, perplexity, and greedy generation (test/helpers/consistency.ts).
import t from 'tap'
import { checkRuntimesAgree } from '../helpers/consistency.ts'
import { trainTiny } from '../helpers/models.ts'

for (const arch of ['LSTM-2000', 'LSTM-1997', 'LSTM-2002', 'Elman-Net', 'GRU']) {
  t.test(arch, async (t) => {
    await checkRuntimesAgree(t, await trainTiny(arch))
  })
}

// One unit per block takes the LSTM cell's reshape-free path (models/rnn.ts); the export is the fused ONNX
// LSTM op for all three (test/consistency/fused.test.ts).
for (const arch of ['LSTM-1997', 'LSTM-2002']) {
  t.test(`${arch}, one unit per block`, async (t) => {
    await checkRuntimesAgree(t, await trainTiny(arch, { nBlk: 12, dBlk: 1 }))
  })
}
