// models/safetensors.ts (the format, strict reading) and src/io/atomic.ts (the atomic write beneath it).
import t, { type Test } from 'tap'
import * as fsp from 'node:fs/promises'
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  type NamedTensor,
} from '../../models/safetensors.ts'
import { writeFileAtomic } from '../../src/io/atomic.ts'
import { LmpError } from '../../src/errors.ts'

type Tap = Test

/** Asserts that fn throws an LmpError whose one-line message matches re. */
async function throwsLmp(t: Tap, fn: () => unknown, re: RegExp, what?: string) {
  try {
    await fn()
    t.fail(`${what ?? re}: did not throw`)
  } catch (e) {
    const ok = e instanceof LmpError && re.test(e.message) && !e.message.includes('\n')
    t.ok(ok, `${what ?? re}: ${(e as Error).message}`)
  }
}

/** A file put together by hand, byte by byte, the way the format describes it. */
function handMade(header: string | object, data: number[] = []): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}
const f32Bytes = (values: number[]) => [...new Uint8Array(new Float32Array(values).buffer)]

const sample = (): Record<string, NamedTensor> => ({
  'embedding.weight': { dtype: 'F32', shape: [3, 2], data: new Float32Array([1, -2, 3.5, 0.25, -0, 1e-30]) },
  'step': { dtype: 'I64', shape: [], data: new BigInt64Array([123456789012345n]) },
  'ids': { dtype: 'I32', shape: [3], data: new Int32Array([-1, 0, 2 ** 31 - 1]) },
  'odd.bias': { dtype: 'F32', shape: [1], data: new Float32Array([7]) },
  'empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  'counts': { dtype: 'I64', shape: [2], data: new BigInt64Array([-5n, 2n ** 62n]) },
})

t.test('encode -> decode round trip', async (t) => {
  const tensors = sample()
  const bytes = encodeSafetensors(tensors, { format: 'pt', step: '10' })
  const back = decodeSafetensors(bytes)
  t.same(back.metadata, { format: 'pt', step: '10' })
  t.same(Object.keys(back.tensors).sort(), Object.keys(tensors).sort())
  for (const [name, tensor] of Object.entries(tensors)) {
    const got = back.tensors[name]
    t.equal(got.dtype, tensor.dtype, `${name} dtype`)
    t.same(got.shape, tensor.shape, `${name} shape`)
    t.equal(got.data.constructor, tensor.data.constructor, `${name} array type`)
    t.same([...got.data], [...tensor.data], `${name} values`)
  }
  t.ok(Object.is(back.tensors['embedding.weight'].data[4], -0), 'bits are kept (negative zero)')
  t.same(decodeSafetensors(encodeSafetensors({})), { tensors: {}, metadata: {} }, 'no tensors at all')
})

t.test('layout: header length, padding, alignment', async (t) => {
  const bytes = encodeSafetensors(sample(), { a: 'b' })
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true))
  t.equal(n % 8, 0, 'header padded to 8 bytes')
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n))
  t.match(text, /^\{.*\} *$/, 'JSON then spaces')
  const header = JSON.parse(text)
  t.same(header.__metadata__, { a: 'b' })
  t.same(header['embedding.weight'], { dtype: 'F32', shape: [3, 2], data_offsets: header['embedding.weight'].data_offsets })
  let total = 0
  for (const [name, info] of Object.entries(header) as [string, { dtype: string; data_offsets: [number, number] }][]) {
    if (name === '__metadata__') continue
    const size = info.dtype === 'I64' ? 8 : 4
    t.equal((8 + n + info.data_offsets[0]) % size, 0, `${name} starts aligned to ${size} bytes in the file`)
    total += info.data_offsets[1] - info.data_offsets[0]
  }
  t.equal(bytes.length, 8 + n + total, 'file = 8 + header + data, nothing else')
  // The data bytes are the little-endian values.
  const [b0] = header.step.data_offsets
  t.equal(new DataView(bytes.buffer).getBigInt64(8 + n + b0, true), 123456789012345n)
})

t.test('reads a hand-made file, with unaligned data', async (t) => {
  // 5-byte-odd header length: the F32 data starts at an odd file offset.
  const header = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, n: { dtype: 'I32', shape: [], data_offsets: [16, 20] } }
  const file = handMade(header, [...f32Bytes([1, 2, 3, 4]), 9, 0, 0, 0])
  t.equal((8 + JSON.stringify(header).length) % 4 !== 0, true, 'the data is unaligned')
  // Also from the middle of a larger buffer, as a Node Buffer slice.
  const inside = Buffer.concat([Buffer.from([1, 2, 3]), file]).subarray(3)
  for (const bytes of [file, inside]) {
    const { tensors, metadata } = decodeSafetensors(bytes)
    t.same(metadata, {})
    t.same([...tensors.w.data], [1, 2, 3, 4])
    t.same(tensors.w.shape, [2, 2])
    t.same([...tensors.n.data], [9])
    t.same(tensors.n.shape, [])
  }
  // Decoded arrays are copies: changing the file afterwards changes nothing.
  const { tensors } = decodeSafetensors(file)
  file.fill(0)
  t.same([...tensors.w.data], [1, 2, 3, 4])
})

t.test('encodes tensors that are views into larger buffers', async (t) => {
  const big = new Float32Array([9, 9, 1, 2, 3, 9])
  const view = big.subarray(2, 5)
  const { tensors } = decodeSafetensors(encodeSafetensors({ v: { dtype: 'F32', shape: [3], data: view } }))
  t.same([...tensors.v.data], [1, 2, 3])
})

t.test('corrupt files: one-line LmpErrors naming the file', async (t) => {
  const F = 'ckpt-1.safetensors'
  const re = (why: string) => new RegExp(`^corrupt safetensors file ${F.replace('.', '\\.')}: .*${why}`)
  const good = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }
  const data = f32Bytes([1, 2])
  await throwsLmp(t, () => decodeSafetensors(new Uint8Array(5), F), re('truncated file'), 'shorter than the length field')
  const tooLong = handMade(good, data)
  new DataView(tooLong.buffer).setBigUint64(0, 10n ** 15n, true)
  await throwsLmp(t, () => decodeSafetensors(tooLong, F), re('header length 1000000000000000 exceeds file size'), 'header length')
  const huge = handMade(good, data)
  new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 1n, true)
  await throwsLmp(t, () => decodeSafetensors(huge, F), re('exceeds file size'), 'header length 2^64-1')
  await throwsLmp(t, () => decodeSafetensors(handMade('{"w": {"dtype": ', data), F), re('bad JSON header'), 'bad JSON')
  await throwsLmp(t, () => decodeSafetensors(handMade('[1, 2]'), F), re('bad JSON header'), 'JSON not an object')
  await throwsLmp(t, () => decodeSafetensors(handMade(' {}'), F), re('bad JSON header'), 'not starting with {')
  const latin1 = handMade('{"\u00e9": 1}')
  latin1[10] = 0xe9 // a lone Latin-1 byte is not UTF-8
  await throwsLmp(t, () => decodeSafetensors(latin1, F), re('bad JSON header'), 'not UTF-8')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, data), F), re('unknown dtype "F33"'), 'unknown dtype')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }, data), F), /^safetensors file ckpt-1\.safetensors: tensor w has dtype F16; only F32, I64 and I32/, 'valid but unsupported dtype')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), F), re('F32\\[3\\] needs 12 bytes, data_offsets \\[0,8\\] hold 8'), 'byte count vs dtype x shape')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data), F), re('bad shape'), 'negative dim')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, data), F), re('bad data_offsets'), 'reversed offsets')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, data), F), re('bad data_offsets'), 'one offset')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data), F), re('truncated file'), 'offsets past the end')
  await throwsLmp(t, () => decodeSafetensors(handMade(good, data.slice(0, 6)), F), re('truncated file'), 'data cut short')
  await throwsLmp(t, () => decodeSafetensors(handMade({
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
  }, data), F), re('tensors a and b overlap'), 'overlapping offsets')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data), F), re('4 unused bytes before tensor w'), 'gap')
  await throwsLmp(t, () => decodeSafetensors(handMade(good, [...data, 0, 0]), F), re('2 unused bytes after the last tensor'), 'trailing bytes')
  await throwsLmp(t, () => decodeSafetensors(handMade({ ...good, __metadata__: { step: 3 } }, data), F), re('__metadata__ must map strings to strings'), 'metadata')
  await throwsLmp(t, () => decodeSafetensors(handMade({ w: 5 }, data), F), re('entry is not an object'), 'entry')
  await throwsLmp(t, () => decodeSafetensors(new Uint8Array(3)), /^corrupt safetensors file <buffer>: /, 'no file name')
})

t.test('damaged files never throw anything but LmpError', async (t) => {
  const good = encodeSafetensors(sample(), { note: 'x' })
  let seed = 99
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n
  let rejected = 0
  for (let i = 0; i < 300; i++) {
    const bytes = i % 3 === 0 ? good.slice(0, random(good.length)) : good.slice()
    if (i % 3 !== 0) for (let k = 0; k < 1 + random(4); k++) bytes[random(Math.min(bytes.length, 8 + 300))] = random(256)
    try {
      decodeSafetensors(bytes, 'f')
    } catch (e) {
      if (!(e instanceof LmpError)) t.fail(`damage #${i} threw ${(e as Error).name}: ${(e as Error).message}`)
      rejected++
    }
  }
  t.ok(rejected > 150, `most damaged files are rejected (${rejected}/300)`)
})

t.test('encodeSafetensors refuses malformed tensors', async (t) => {
  t.throws(() => encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }), /shape \[2,2\] holds 4 values, data has 3/)
  t.throws(() => encodeSafetensors({ w: { dtype: 'I64', shape: [1], data: new Float32Array(1) } }), /I64 needs a BigInt64Array/)
  t.throws(() => encodeSafetensors({ __metadata__: { dtype: 'F32', shape: [], data: new Float32Array(1) } }), /invalid tensor name/)
})

t.test('writeSafetensors / readSafetensors', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'exp', 'run', 'ckpt-5.safetensors') // parent folders do not exist yet
  await writeSafetensors(path, sample(), { step: '5' })
  const back = await readSafetensors(path)
  t.same(back.metadata, { step: '5' })
  t.same([...back.tensors.counts.data], [-5n, 2n ** 62n])
  t.same(readdirSync(join(dir, 'exp', 'run')), ['ckpt-5.safetensors'], 'no temp file left behind')
  await throwsLmp(t, () => readSafetensors(join(dir, 'nope.safetensors')), new RegExp(`^no such checkpoint: ${join(dir, 'nope.safetensors')}$`))
  writeFileSync(join(dir, 'bad.safetensors'), new Uint8Array(4))
  await throwsLmp(t, () => readSafetensors(join(dir, 'bad.safetensors')), new RegExp(`^corrupt safetensors file ${join(dir, 'bad.safetensors')}: truncated`))
})

t.test('writeFileAtomic', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'a', 'b', 'file.txt')
  await writeFileAtomic(path, 'first')
  t.equal(readFileSync(path, 'utf8'), 'first', 'creates parent folders, writes strings')
  await writeFileAtomic(path, new Uint8Array([104, 105]))
  t.equal(readFileSync(path, 'utf8'), 'hi', 'replaces with bytes')
  // Concurrent writers each use their own temp file; one of them wins whole.
  await Promise.all(['x'.repeat(100000), 'y'.repeat(100000), 'z'.repeat(100000)].map((s) => writeFileAtomic(path, s)))
  t.match(readFileSync(path, 'utf8'), /^(x{100000}|y{100000}|z{100000})$/)
  t.same(readdirSync(join(dir, 'a', 'b')), ['file.txt'], 'no temp files left')

  // Rename fails (the target is a non-empty directory): the temp file is removed, the target untouched.
  const blocked = join(dir, 'blocked')
  mkdirSync(join(blocked, 'inside'), { recursive: true })
  await t.rejects(writeFileAtomic(blocked, 'data'))
  t.same(readdirSync(dir).sort(), ['a', 'blocked'], 'temp file cleaned up after a failed rename')
  t.ok(existsSync(join(blocked, 'inside')))
})

t.test('writeFileAtomic: a write that fails halfway leaves the old file intact', async (t) => {
  // Mock node:fs/promises so that writing the temp file writes some bytes, then fails (disk full).
  const { writeFileAtomic: failing } = await t.mockImport<typeof import('../../src/io/atomic.ts')>('../../src/io/atomic.ts', {
    'node:fs/promises': {
      ...fsp,
      open: async (...args: Parameters<typeof fsp.open>) => {
        const handle = await fsp.open(...args)
        if (args[1] !== 'wx') return handle
        return new Proxy(handle, {
          get(target, key) {
            if (key === 'writeFile') {
              return async (data: Uint8Array | string) => {
                await target.write(Buffer.from(data).subarray(0, 3))
                throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
              }
            }
            const value = Reflect.get(target, key)
            return typeof value === 'function' ? value.bind(target) : value
          },
        })
      },
    },
  })
  const dir = t.testdir()
  const path = join(dir, 'ckpt.safetensors')
  const old = encodeSafetensors(sample())
  await writeFileAtomic(path, old)
  await t.rejects(failing(path, new Uint8Array(1000).fill(7)), { code: 'ENOSPC' })
  t.same(readFileSync(path), Buffer.from(old), 'the old file is unchanged')
  t.same(readdirSync(dir), ['ckpt.safetensors'], 'the half-written temp file is gone')
  t.same([...(await readSafetensors(path)).tensors.ids.data], [-1, 0, 2 ** 31 - 1], 'and still reads')
})

t.test('readSafetensors refuses non-finite weights, naming the tensor and the place', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'ckpt-1.safetensors')
  await writeSafetensors(path, sample())
  const bytes = readFileSync(path)
  const headerLength = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString())
  // A flipped exponent: value 3 of embedding.weight (3.5, at [1, 0]) becomes Infinity or NaN.
  const at = 8 + headerLength + header['embedding.weight'].data_offsets[0] + 2 * 4
  const flipped = Buffer.from(bytes)
  flipped[at + 3] |= 0x7f
  flipped[at + 2] |= 0x80
  writeFileSync(path, flipped)
  await throwsLmp(t, () => readSafetensors(path), new RegExp(`^corrupt checkpoint ${path}: tensor 'embedding\\.weight' holds (NaN|-?Infinity) at index \\[1, 0\\] \\(weights must be finite\\)$`))
  for (const [value, shown] of [[NaN, 'NaN'], [-Infinity, '-Infinity'], [Infinity, 'Infinity']] as const) {
    await writeSafetensors(path, { ...sample(), 'odd.bias': { dtype: 'F32', shape: [1], data: new Float32Array([value]) } })
    await throwsLmp(t, () => readSafetensors(path), new RegExp(`tensor 'odd\\.bias' holds ${shown} at index 0 `))
  }
  // The largest finite floats and integer tensors pass.
  await writeSafetensors(path, { ...sample(), 'odd.bias': { dtype: 'F32', shape: [2], data: new Float32Array([3.4028234663852886e38, -3.4028234663852886e38]) } })
  t.same([...(await readSafetensors(path)).tensors['odd.bias'].data], [3.4028234663852886e38, -3.4028234663852886e38])
})
