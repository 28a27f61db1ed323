import t from 'tap'
import { DATASETS, loadDataset } from '../../src/data/index.ts'
import { LmpError } from '../../src/errors.ts'

t.test('demo dataset: sizes, first and last samples per split', async (t) => {
  t.same(DATASETS.demo, { versions: ['train', 'valid', 'test'], defaultVersion: 'train' })
  const train = await loadDataset('demo')
  const valid = await loadDataset('demo', 'valid')
  const test = await loadDataset('demo', 'test')
  t.equal(train.length, 4950)
  t.equal(valid.length, 4950)
  t.equal(test.length, 100)
  t.equal(train[0], 'If you add 0 to 1 you get 1 .')
  t.equal(train.at(-1), 'If you add 98 to 99 you get 197 .')
  t.equal(valid[0], 'If you add 1 to 0 you get 1 .')
  t.equal(valid.at(-1), 'If you add 99 to 98 you get 197 .')
  t.equal(test[0], 'If you add 0 to 0 you get 0 .')
  t.equal(test.at(-1), 'If you add 99 to 99 you get 198 .')
  t.same(await loadDataset('demo', 'train'), train)
  t.equal(train[1], 'If you add 0 to 2 you get 2 .', 'a-major order')
})

t.test('unknown dataset or version lists the valid ones', async (t) => {
  await t.rejects(loadDataset('nope'), /unknown dataset 'nope': must be one of demo/)
  await t.rejects(loadDataset('demo', 'dev'), /must be one of train, valid, test/)
  await loadDataset('demo', 'dev').catch((e) => t.ok(e instanceof LmpError))
})
