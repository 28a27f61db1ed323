// The page's browser-safe helpers, in Node: the embedding search, metrics.jsonl parsing and chart
// ticks, and how tokens read in the score view.
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { createTokenizer } from '../../src/tokenizer/index.ts'
import { demoSamples } from '../../src/data/demo.ts'
import { analogyVector, nearest, readEmbedding, unitRows, type Embedding } from '../../web/embedding.ts'
import { parseMetrics, smooth, ticks } from '../../web/metrics.ts'
import { tokenPieces } from '../../web/pieces.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { writeAttentionModel } from './attention-model.ts'

t.test('nearest neighbours by cosine similarity', async (t) => {
  // Four 2-d rows: east, north-east, north, and a zero row.
  const e: Embedding = { name: 'e', rows: 4, dims: 2, unit: unitRows(Float32Array.of(2, 0, 1, 1, 0, 3, 0, 0), 4, 2) }
  t.same(Array.from(e.unit.subarray(0, 6)).map((x) => +x.toFixed(4)), [1, 0, 0.7071, 0.7071, 0, 1], 'rows scaled to length 1')
  const near = nearest(e, Float32Array.of(1, 0), 3)
  t.same(near.map((n) => n.id), [0, 1, 2], 'east, then north-east, then north (cosine 0, tied with the zero row: lower id first)')
  t.same(nearest(e, Float32Array.of(5, 5), 2, [1]).map((n) => n.id), [0, 2], 'excluded ids are skipped; the query length does not matter')
  t.ok(Math.abs(nearest(e, Float32Array.of(5, 5), 1)[0].cosine - 1) < 1e-6)
  // north-east − east + north points further north-west: north is the closest row.
  t.same(Array.from(analogyVector(e, 1, 0, 2)).map((x) => +x.toFixed(4)), [-0.2929, 1.7071])
  t.equal(nearest(e, analogyVector(e, 1, 0, 2), 1, [1, 0])[0].id, 2)
})

t.test('the embedding matrix is read out of model.onnx', async (t) => {
  const root = t.testdir({})
  const { dir, manifest } = await writeExportedModel(root, 'tiny', 3)
  const lstm = readEmbedding(readFileSync(path.join(dir, 'onnx', 'model.onnx')), manifest.vocabSize)
  t.same([lstm.name, lstm.rows, lstm.dims], ['emb.weight', 26, 16])
  const transformer = await writeAttentionModel(root, 'attn')
  const wte = readEmbedding(transformer.bytes, transformer.manifest.vocabSize)
  t.same([wte.name, wte.rows, wte.dims], ['wte.weight', 26, 8])
  t.throws(() => readEmbedding(transformer.bytes, 27), /wte\.weight is float32\[26,8\], not float32\[27, dims\]/)
  t.throws(() => readEmbedding(Uint8Array.of(1, 2, 3), 26), /corrupt ONNX file/)
})

t.test('metrics.jsonl: loss, validation perplexity, bad lines, resumed runs', async (t) => {
  const text = [
    '{"step":10,"loss":3,"lr":0.01,"tokensPerSec":9000,"time":1}',
    '{"step":20,"loss":2.5,"lr":0.01}',
    '{"step":20,"valPpl":9,"valLoss":2.197}',
    '{"step":30,"valLoss":2}',
    'not json',
    '{"loss":1}',
    '',
    '{"step":20,"loss":2.4}', // a resumed run logs step 20 again: the latest wins
    '{"step":40,"loss":2',
  ].join('\n')
  const c = parseMetrics(text)
  t.same(c.loss, [{ step: 10, value: 3 }, { step: 20, value: 2.4 }])
  t.same(c.valPpl.map((p) => p.step), [20, 30])
  t.equal(c.valPpl[0].value, 9)
  t.ok(Math.abs(c.valPpl[1].value - Math.exp(2)) < 1e-12, 'valPpl from valLoss when only that is logged')
  t.same(c.lr.length, 2)
  t.equal(c.skipped, 3, 'not JSON, no step, cut short')
  t.same(parseMetrics('').loss, [])

  t.same(smooth([{ step: 1, value: 1 }, { step: 2, value: 3 }], 0.5), [{ step: 1, value: 1 }, { step: 2, value: 2 }])
  t.same(ticks(0, 10, 5), [0, 2, 4, 6, 8, 10])
  t.same(ticks(0.93, 3.07, 4), [1, 2, 3])
  t.same(ticks(0.93, 3.07, 8), [1, 1.5, 2, 2.5, 3])
  t.same(ticks(5, 5), [5])
})

t.test('token pieces spell the decoded text, whitespace tokens included', async (t) => {
  for (const name of ['character', 'whitespace']) {
    const tk = createTokenizer(name)
    tk.buildVocab(demoSamples('train'))
    const text = 'If you add 12 to 30 you get 42.'
    const ids = tk.enc(text)
    const pieces = tokenPieces(tk, ids)
    t.equal(pieces.length, ids.length)
    t.equal(pieces.join(''), tk.dec(ids, { rmSpTks: true }), `${name}: the pieces join to the decoded text`)
    t.equal(pieces[0], '', 'BOS reads as nothing')
    t.equal(pieces.at(-1), '', 'EOS reads as nothing')
    if (name === 'character') {
      t.same(pieces.slice(1, 5), ['I', 'f', ' ', 'y'], 'a space token shows its space')
    } else {
      t.same(pieces.slice(1, 4), ['If', ' you', ' add'], 'words carry the space before them')
    }
  }
})
