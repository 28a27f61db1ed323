// A full disk, in this process, for the files whose path matches a pattern: their writes store half the
// bytes, then fail with ENOSPC as write(2) does. Covers the ways lmp writes: FileHandle.writeFile/write
// (fs/promises), and writeSync, appendFileSync, writeFileSync (fs). ES modules see the patched functions
// through syncBuiltinESMExports.
import fs from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })
const half = (data: string | ArrayBufferView): Buffer => {
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return bytes.subarray(0, Math.floor(bytes.length / 2))
}

/** Makes writes to paths matching `full` fail with ENOSPC until the returned function is called. */
export function diskFull(full: RegExp): () => void {
  const matches = (path: unknown) => typeof path === 'string' && full.test(path)
  const saved = { open: fs.promises.open, openSync: fs.openSync, closeSync: fs.closeSync, writeSync: fs.writeSync, appendFileSync: fs.appendFileSync, writeFileSync: fs.writeFileSync }
  const p = fs.promises as any
  const f = fs as any

  p.open = async (path: string, ...rest: any[]) => {
    const handle = await (saved.open as any)(path, ...rest)
    if (!matches(path)) return handle
    return new Proxy(handle, {
      get(target, key) {
        if (key === 'writeFile' || key === 'write') {
          return async (data: string | ArrayBufferView) => {
            await target.write(half(data))
            throw enospc()
          }
        }
        const value = Reflect.get(target, key)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  }
  const fullFds = new Set<number>()
  f.openSync = (path: string, ...rest: any[]) => {
    const fd = (saved.openSync as any)(path, ...rest)
    if (matches(path)) fullFds.add(fd)
    return fd
  }
  f.closeSync = (fd: number) => {
    fullFds.delete(fd)
    return saved.closeSync(fd)
  }
  f.writeSync = (fd: number, data: any, ...rest: any[]) => {
    if (!fullFds.has(fd)) return (saved.writeSync as any)(fd, data, ...rest)
    const offset = typeof rest[0] === 'number' ? rest[0] : 0
    saved.writeSync(fd, half(Buffer.from(data).subarray(offset)))
    throw enospc()
  }
  for (const name of ['appendFileSync', 'writeFileSync'] as const) {
    f[name] = (path: string, data: any, ...rest: any[]) => {
      if (!matches(path)) return (saved[name] as any)(path, data, ...rest)
      saved[name](path, half(data))
      throw enospc()
    }
  }
  syncBuiltinESMExports()
  return () => {
    p.open = saved.open
    Object.assign(f, { openSync: saved.openSync, closeSync: saved.closeSync, writeSync: saved.writeSync, appendFileSync: saved.appendFileSync, writeFileSync: saved.writeFileSync })
    syncBuiltinESMExports()
  }
}
