// Atomic file replacement: readers see the old file or the new one, never a half-written one,
// even if the process dies mid-write (checkpoints, exported models).
import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Writes `data` to a temp file in the target's directory (same filesystem, so rename is atomic),
 * fsyncs it, then renames it over `path`. Creates missing parent directories. On failure the temp
 * file is removed and the target is left as it was.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true })
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
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
    throw e
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
