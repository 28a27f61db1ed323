// src/io: appended lines whole or absent, write errors as one line naming the file, a killed writer's temp
// files removed, and the folder lock (one holder; a dead holder's lock taken over, also after kill -9 of a
// real process; other hosts' locks kept).
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { appendLine, removeTempFiles, writeError, writeFileAtomic, WriteError } from '../../src/io/atomic.ts'
import { LOCK_FILE, lockFolder, processAlive, processStart, withFolderLock } from '../../src/io/lock.ts'

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!

t.test('appendLine: whole lines, a failed one absent, a torn one ended first', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'metrics.jsonl')
  appendLine(path, '{"step":1}')
  appendLine(path, '{"step":2}')
  t.equal(readFileSync(path, 'utf8'), '{"step":1}\n{"step":2}\n')

  // The disk fills up after some bytes of the line: they are cut off again.
  const { appendLine: failing } = await t.mockImport<typeof import('../../src/io/atomic.ts')>('../../src/io/atomic.ts', {
    'node:fs': {
      ...fs,
      writeSync: (fd: number, data: Buffer, offset = 0) => {
        fs.writeSync(fd, data.subarray(offset, offset + 3))
        throw enospc()
      },
    },
  })
  const err = (() => {
    try {
      failing(path, '{"step":3,"loss":1.5}')
    } catch (e) {
      return e as WriteError
    }
  })()
  t.equal(err?.constructor.name, 'WriteError', 'a WriteError, an LmpError (mockImport loads its own copy of the class)')
  t.equal(err?.message, `cannot write ${path}: no space left on device (ENOSPC)`)
  t.equal(readFileSync(path, 'utf8'), '{"step":1}\n{"step":2}\n', 'the line is absent, not half there')

  // A killed writer left half a line without its newline: the next line starts on a line of its own.
  writeFileSync(path, '{"step":1}\n{"ste')
  appendLine(path, '{"step":2}')
  t.equal(readFileSync(path, 'utf8'), '{"step":1}\n{"ste\n{"step":2}\n')
  t.throws(() => appendLine(join(dir, 'no', 'such', 'folder', 'm.jsonl'), 'x'), /^cannot write \S+m\.jsonl: /)
})

t.test('write errors: one line naming the file', async (t) => {
  t.equal(writeError('/x/ckpt-4.safetensors', enospc()).message, 'cannot write /x/ckpt-4.safetensors: no space left on device (ENOSPC)')
  t.equal(writeError('/x/a', Object.assign(new Error('EDQUOT: quota'), { code: 'EDQUOT' })).status, 507)
  t.equal(writeError('/x/a', new Error('something odd\nsecond line')).message, 'cannot write /x/a: something odd')
  const dir = t.testdir({ blocked: { inside: {} } })
  await t.rejects(writeFileAtomic(join(dir, 'blocked'), 'data'), { message: new RegExp(`^cannot write ${join(dir, 'blocked')}: `) })
})

t.test('removeTempFiles removes what killed writers left, nothing else', async (t) => {
  const dir = t.testdir({
    '.ckpt-6.safetensors.4242.0123456789ab.tmp': 'x',
    '.metrics.jsonl.7.abcdef012345.tmp': 'x',
    'tokenizer.json.tmp-4242-1700000000000': 'x',
    'ckpt-6.safetensors': 'x',
    'metrics.jsonl': 'x',
    'notes.tmp': 'x',
    [LOCK_FILE]: 'x',
  })
  t.same(removeTempFiles(dir).sort(), ['.ckpt-6.safetensors.4242.0123456789ab.tmp', '.metrics.jsonl.7.abcdef012345.tmp', 'tokenizer.json.tmp-4242-1700000000000'])
  t.same(readdirSync(dir).sort(), [LOCK_FILE, 'ckpt-6.safetensors', 'metrics.jsonl', 'notes.tmp'])
  t.same(removeTempFiles(join(dir, 'missing')), [], 'a missing folder has none')
})

t.test('lockFolder: one holder at a time; released; a dead holder\'s lock taken over', async (t) => {
  const dir = join(t.testdir(), 'exp', 'run') // created by the lock
  const lock = lockFolder(dir, 'lmp train-model')
  const held = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))
  t.match(held, { pid: process.pid, host: hostname(), command: 'lmp train-model' })
  t.throws(() => lockFolder(dir, 'lmp export-onnx'), { message: new RegExp(`^${dir} is in use by lmp train-model \\(pid ${process.pid}, since \\S+\\); wait for it to finish, or delete ${join(dir, LOCK_FILE)} if that process is gone$`) })
  lock.release()
  t.notOk(existsSync(join(dir, LOCK_FILE)), 'released')
  lock.release() // idempotent

  // Stale: the holder's process is gone (or the file is not a lock at all).
  t.notOk(processAlive(deadPid()))
  for (const stale of [JSON.stringify({ pid: deadPid(), host: hostname(), command: 'lmp train-model', since: 'then', token: 'a' }), '{"pid": 1', '']) {
    writeFileSync(join(dir, LOCK_FILE), stale)
    const taken = lockFolder(dir, 'lmp export-onnx')
    t.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).token, taken.owner.token, `taken over: ${stale.slice(0, 20)}`)
    taken.release()
  }
  // A live pid that is another process now (a reused pid): stale. Where the system tells start times.
  const started = processStart(process.pid)
  t.test('a reused pid', { skip: started === undefined ? 'no /proc here' : false }, async (t) => {
    t.match(started, /^\d+$/)
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), command: 'old', since: 'then', token: 'c', started: `${Number(started) - 1}` }))
    const taken = lockFolder(dir, 'lmp export-onnx')
    t.equal(taken.owner.started, started, 'the new lock records the start time')
    taken.release()
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), command: 'same', since: 'then', token: 'c', started }))
    t.throws(() => lockFolder(dir, 'lmp export-onnx'), /in use by same/, 'the same pid and start time: held')
  })
  // Another host's process cannot be checked: its lock holds.
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: 'elsewhere', command: 'lmp train-model', since: 'then', token: 'b' }))
  t.throws(() => lockFolder(dir, 'lmp export-onnx'), /in use by lmp train-model \(pid \d+ on elsewhere, since then\)/)
  // A release never removes another holder's lock.
  const mine = lockFolder(join(dir, 'other'), 'x')
  writeFileSync(join(dir, 'other', LOCK_FILE), JSON.stringify({ ...mine.owner, token: 'someone else' }))
  mine.release()
  t.ok(existsSync(join(dir, 'other', LOCK_FILE)), 'the other holder keeps it')
  t.same(readdirSync(dir).filter((f) => f.includes('tmp') || f.includes('stale')), [], 'no temp files of the lock left')

  // withFolderLock releases however the work ends.
  const free = join(dir, 'free')
  await t.rejects(withFolderLock(free, 'x', async () => { throw new Error('boom') }), /boom/)
  t.notOk(existsSync(join(free, LOCK_FILE)), 'released after a failure')
})

t.test('a lock held by a real process blocks until that process is killed', async (t) => {
  const dir = t.testdir()
  const lockModule = fileURLToPath(new URL('../../src/io/lock.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', '-e',
    `const { lockFolder } = await import(${JSON.stringify(lockModule)}); lockFolder(${JSON.stringify(dir)}, 'holder'); console.log('held'); setInterval(() => {}, 1000)`],
  { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('held') && resolve())
    child.on('exit', (code) => reject(new Error(`the holder exited (${code})`)))
  })
  t.throws(() => lockFolder(dir, 'second'), new RegExp(`in use by holder \\(pid ${child.pid}, `))
  child.kill('SIGKILL')
  await exited
  t.ok(existsSync(join(dir, LOCK_FILE)), 'kill -9 leaves the lock file behind')
  const lock = lockFolder(dir, 'second')
  t.equal(lock.owner.command, 'second', 'and the next writer takes it over')
  lock.release()
})

t.test('processes racing for a stale lock: exactly one gets it', async (t) => {
  const dir = t.testdir()
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: hostname(), command: 'killed', since: 'then', token: 'z' }))
  const lockModule = fileURLToPath(new URL('../../src/io/lock.ts', import.meta.url))
  const racer = () => new Promise<string>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '-e',
      `const { lockFolder } = await import(${JSON.stringify(lockModule)})
       try { lockFolder(${JSON.stringify(dir)}, 'racer'); console.log('won'); setTimeout(() => {}, 2000) } catch (e) { console.log('lost: ' + e.message) }`],
    { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', () => resolve(out.trim()))
  })
  const results = await Promise.all([racer(), racer(), racer(), racer()])
  t.equal(results.filter((r) => r === 'won').length, 1, results.join(' | '))
  t.ok(results.filter((r) => r !== 'won').every((r) => /^lost: .* is in use by racer \(pid \d+/.test(r)), 'the others are told who holds it')
  t.same(readdirSync(dir).filter((f) => f !== LOCK_FILE), [], 'no temp or stale files left')
})
