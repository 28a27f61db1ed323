// Writes in an experiment folder that a kill or a full disk cannot leave half done: files are replaced
// atomically (readers see the old file or the new one, never a half-written one), appended lines are whole
// or absent, and a failed write is one line that names the file.
import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, ftruncateSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs'
import { mkdir, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { LmpError } from '../errors.ts'

// Why a write can fail that the user can fix, in words (errno names as in errno(3)).
const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
}

/** A failed write, as one line naming the file: `cannot write PATH: no space left on device (ENOSPC)`. */
export class WriteError extends LmpError {
  constructor(readonly path: string, readonly code: string | undefined, reason: string) {
    super(`cannot write ${path}: ${reason}`, code === 'ENOSPC' || code === 'EDQUOT' ? 507 : 500)
  }
}

/** `err` (from a write to `path`) as a WriteError; a WriteError is returned as it is. */
export function writeError(path: string, err: unknown): WriteError {
  if (err instanceof WriteError) return err
  const code = (err as NodeJS.ErrnoException)?.code
  const reason = code && REASONS[code] ? `${REASONS[code]} (${code})` : String((err as Error)?.message ?? err).split('\n')[0]
  return new WriteError(path, code, reason)
}

/**
 * Writes `data` to a temp file in the target's directory (same filesystem, so rename is atomic),
 * fsyncs it, then renames it over `path`. Creates missing parent directories. On failure the temp
 * file is removed, the target is left as it was, and a WriteError names `path`. Temp files are named
 * `.NAME.PID.RANDOM.tmp`; a killed writer's are removed by removeTempFiles.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path)
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await mkdir(dir, { recursive: true })
    const file = await open(temp, 'wx')
    try {
      await file.writeFile(data)
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, path)
  } catch (e) {
    await unlink(temp).catch(() => {})
    throw writeError(path, e)
  }
  // Persist the rename itself; not possible on every platform (Windows), and then not needed for atomicity.
  try {
    const d = await open(dir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  } catch {
    // ignore
  }
}

/**
 * Appends `line` and a newline to `path` so that the line is whole or absent: a failed write (a full
 * disk) is cut off again, and a line that a killed writer left unfinished is ended first, so that it never
 * runs into the new one. One writer at a time (the experiment lock, src/io/lock.ts). Throws a WriteError.
 */
export function appendLine(path: string, line: string): void {
  let fd: number
  try {
    fd = openSync(path, 'a+')
  } catch (e) {
    throw writeError(path, e)
  }
  let size = -1
  try {
    size = fstatSync(fd).size
    let text = line + '\n'
    if (size > 0) {
      const last = Buffer.alloc(1)
      readSync(fd, last, 0, 1, size - 1)
      if (last[0] !== 0x0a) text = '\n' + text
    }
    const bytes = Buffer.from(text)
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at)
  } catch (e) {
    if (size >= 0) {
      try {
        ftruncateSync(fd, size)
      } catch {
        // the file may keep a partial line; readers skip lines that are not JSON
      }
    }
    throw writeError(path, e)
  } finally {
    closeSync(fd)
  }
}

// writeFileAtomic's temp files, and saveTokenizer's (src/tokenizer/io.ts: NAME.tmp-PID-TIME).
const TEMP_FILE = /^\..+\.\d+\.[0-9a-f]{12}\.tmp$|\.tmp-\d+-\d+$/

/**
 * Removes the temp files a killed writer left in `dir` (not in its subfolders); returns their names.
 * Only safe while no other process writes there: call it holding the folder's lock.
 */
export function removeTempFiles(dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const stale = names.filter((f) => TEMP_FILE.test(f))
  for (const f of stale) rmSync(join(dir, f), { force: true })
  return stale
}
