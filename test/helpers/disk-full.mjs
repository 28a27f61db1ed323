// Preload (node --import) that makes the disk "full" for some files: writes to a file whose path matches
// $LMP_TEST_ENOSPC (a regular expression) store half their bytes, then fail with ENOSPC as the kernel's
// write(2) does. Covers the ways lmp writes: FileHandle.writeFile (fs/promises) and writeSync, appendFileSync
// and writeFileSync (fs). Plain JS: it runs before tsx is registered.
import fs from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'

const full = new RegExp(process.env.LMP_TEST_ENOSPC)
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })
const half = (data) => {
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return bytes.subarray(0, Math.floor(bytes.length / 2))
}
const matches = (path) => typeof path === 'string' && full.test(path)

const { open } = fs.promises
fs.promises.open = async (path, ...rest) => {
  const handle = await open(path, ...rest)
  if (!matches(path)) return handle
  return new Proxy(handle, {
    get(target, key) {
      if (key === 'writeFile' || key === 'write') {
        return async (data) => {
          await target.write(half(data))
          throw enospc()
        }
      }
      const value = Reflect.get(target, key)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

const fullFds = new Set()
const { openSync, closeSync, writeSync, appendFileSync, writeFileSync } = fs
fs.openSync = (path, ...rest) => {
  const fd = openSync(path, ...rest)
  if (matches(path)) fullFds.add(fd)
  return fd
}
fs.closeSync = (fd) => {
  fullFds.delete(fd)
  return closeSync(fd)
}
fs.writeSync = (fd, data, ...rest) => {
  if (!fullFds.has(fd)) return writeSync(fd, data, ...rest)
  const offset = typeof rest[0] === 'number' ? rest[0] : 0
  writeSync(fd, half(Buffer.from(data).subarray(offset)))
  throw enospc()
}
for (const [name, original] of [['appendFileSync', appendFileSync], ['writeFileSync', writeFileSync]]) {
  fs[name] = (path, data, ...rest) => {
    if (!matches(path)) return original(path, data, ...rest)
    original(path, half(data))
    throw enospc()
  }
}
syncBuiltinESMExports()
