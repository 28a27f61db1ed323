import t from 'tap'
import { lmWindows, countTokens } from '../../src/data/index.ts'
import { createTokenizer, LMP_SPECIAL_IDS, type Tokenizer } from '../../src/tokenizer/index.ts'
import { LmpError } from '../../src/errors.ts'

/** A tokenizer whose enc() returns fixed ids, to pin the window arithmetic to lmp's example. */
const fixed = (ids: number[]) => ({ enc: () => ids, specialIds: LMP_SPECIAL_IDS }) as unknown as Tokenizer

t.test("lmp's LMFormatDset example: L=3, stride=2", async (t) => {
  const w = [...lmWindows(['x'], fixed([0, 4, 5, 6, 1]), 3, 2)]
  t.same(w, [
    { isNotCtx: [true, true, true], cur: [0, 4, 5], next: [4, 5, 6] },
    { isNotCtx: [false, true, true], cur: [5, 6, 1], next: [6, 1, 2] },
  ], 'the window starting with EOS is skipped')
  t.equal(countTokens(['x'], fixed([0, 4, 5, 6, 1])), 5)
})

t.test('invariants on the demo text, every stride', async (t) => {
  const tk = createTokenizer('character')
  tk.buildVocab(['If you add 12 to 34 you get 46 .'])
  const samples = ['If you add 12 to 34 you get 46 .', 'If you add 1 to 2 you get 3 .']
  for (let stride = 1; stride <= 8; stride++) {
    const ws = [...lmWindows(samples, tk, 8, stride)]
    for (const w of ws) {
      t.equal(w.cur.length, 8)
      t.equal(w.next.length, 8)
      t.not(w.cur[0], 1, 'no window starts with EOS')
      t.same(w.cur.slice(1), w.next.slice(0, -1), 'cur[1:] == next[:-1]')
      t.equal(w.isNotCtx.filter((x) => !x).length, w.isNotCtx[0] ? 0 : 8 - stride)
    }
    // every predicted target is counted exactly once over a sample's windows
    const n = samples.map((s) => tk.enc(s).length).reduce((a, b) => a + b)
    const targets = ws.reduce((acc, w) => acc + w.next.filter((id, i) => w.isNotCtx[i] && id !== 2).length, 0)
    t.equal(targets, n - samples.length, `stride ${stride}: each id but BOS is a target once`)
  }
})

t.test('lazy and validated', async (t) => {
  let pulled = 0
  function* many() { for (let i = 0; i < 1e9; i++) { pulled++; yield 'ab' } }
  const it = lmWindows(many(), fixed([0, 4, 1]), 2, 2)
  it.next()
  t.equal(pulled, 1, 'samples are pulled one at a time')
  t.throws(() => lmWindows([], fixed([]), 4, 5).next())
  t.throws(() => lmWindows([], fixed([]), 4, 0).next())
  try { lmWindows([], fixed([]), 4, 5).next() } catch (e) { t.ok(e instanceof LmpError) }
})
