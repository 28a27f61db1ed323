// Downloads into the dataset cache (node only): streamed to a temp file beside the target while hashing,
// then checked (sha256, size) and renamed into place. Only a renamed file is ever read back, so a download
// that fails or is killed half-way leaves nothing a later run would trust.
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { LmpError } from '../errors.ts'

export interface RemoteFile {
  url: string
  /** null where no checksum is known offline (the file is still only trusted once complete and renamed) */
  sha256: string | null
  /** An MD5 to check as well, where that is the only checksum published (GLUE's WNLI.zip). */
  md5?: string
  size?: number
}

export async function sha256File(path: string, algorithm = 'sha256'): Promise<string> {
  const hash = createHash(algorithm)
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** True when `path` exists and matches the expected size and checksum. */
export async function isValidCopy(path: string, file: RemoteFile): Promise<boolean> {
  if (!existsSync(path) || !statSync(path).isFile()) return false
  if (file.size !== undefined && statSync(path).size !== file.size) return false
  if (file.md5 !== undefined && (await sha256File(path, 'md5')) !== file.md5) return false
  return file.sha256 === null || (await sha256File(path)) === file.sha256
}

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB`
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, start and end lines otherwise). */
function progressBar(label: string, total: number | undefined) {
  const tty = process.stderr.isTTY
  let last = 0
  if (!tty) process.stderr.write(`downloading ${label}${total ? ` (${fmtBytes(total)})` : ''}\n`)
  return {
    update(done: number) {
      if (!tty || Date.now() - last < 100) return
      last = Date.now()
      const frac = total ? Math.min(1, done / total) : 0
      const bar = total ? `[${'#'.repeat(Math.round(frac * 30)).padEnd(30)}] ${(frac * 100).toFixed(0).padStart(3)}% ` : ''
      process.stderr.write(`\r${label} ${bar}${fmtBytes(done)}${total ? ` / ${fmtBytes(total)}` : ''}`)
    },
    end(done: number) {
      process.stderr.write(`${tty ? '\r' : ''}downloaded ${label}: ${fmtBytes(done)}${' '.repeat(30)}\n`)
    },
  }
}

/**
 * Download `file` to `dest` unless a valid copy is there already. `offlineHint` is appended to the one-line
 * error when the host cannot be reached (it names the local-file alternative).
 */
export async function downloadFile(file: RemoteFile, dest: string, offlineHint: string): Promise<void> {
  if (await isValidCopy(dest, file)) return
  mkdirSync(dirname(dest), { recursive: true })
  // leftovers of downloads that were killed: never trusted, removed here
  for (const f of readdirSync(dirname(dest))) {
    if (f.startsWith(`${basename(dest)}.partial-`)) rmSync(join(dirname(dest), f), { force: true })
  }
  const tmp = `${dest}.partial-${process.pid}-${Date.now()}`
  try {
    let res: Response
    try {
      res = await fetch(file.url)
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      const why = cause?.code ?? cause?.message ?? (err as Error).message
      throw new LmpError(`cannot download ${file.url} (${why}); ${offlineHint}`)
    }
    if (!res.ok || !res.body) throw new LmpError(`cannot download ${file.url}: HTTP ${res.status}; ${offlineHint}`)
    const total = Number(res.headers.get('content-length')) || file.size
    const bar = progressBar(basename(dest), total)
    const hash = createHash('sha256')
    const md5 = createHash('md5')
    const out = createWriteStream(tmp)
    let done = 0
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk)
        md5.update(chunk)
        done += chunk.length
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
        bar.update(done)
      }
    } catch (err) {
      throw new LmpError(`download of ${file.url} was cut off after ${fmtBytes(done)} (${(err as Error).message}); ${offlineHint}`)
    } finally {
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
    }
    if (file.size !== undefined && done !== file.size) {
      throw new LmpError(`download of ${file.url} is ${done} bytes, expected ${file.size}; ${offlineHint}`)
    }
    const digest = hash.digest('hex')
    if (file.sha256 !== null && digest !== file.sha256) {
      throw new LmpError(`download of ${file.url} has sha256 ${digest}, expected ${file.sha256}`)
    }
    const md5Digest = md5.digest('hex')
    if (file.md5 !== undefined && md5Digest !== file.md5) {
      throw new LmpError(`download of ${file.url} has md5 ${md5Digest}, expected ${file.md5}`)
    }
    renameSync(tmp, dest)
    bar.end(done)
  } finally {
    rmSync(tmp, { force: true })
  }
}
