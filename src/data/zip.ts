// Reads one member of a zip archive (stored or deflated), enough for the dataset archives (node only).
import { inflateRawSync } from 'node:zlib'
import { LmpError } from '../errors.ts'

export function readZipMember(zip: Buffer, name: string, label = 'zip file'): Buffer {
  // the end-of-central-directory record is in the last 64 KiB + 22 bytes
  let eocd = -1
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) { eocd = i; break }
  }
  if (eocd < 0) throw new LmpError(`${label} is not a zip archive`)
  const count = zip.readUInt16LE(eocd + 10)
  let p = zip.readUInt32LE(eocd + 16)
  const names: string[] = []
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new LmpError(`${label}: corrupt central directory`)
    const method = zip.readUInt16LE(p + 10)
    const compSize = zip.readUInt32LE(p + 20)
    const nameLen = zip.readUInt16LE(p + 28), extraLen = zip.readUInt16LE(p + 30), commentLen = zip.readUInt16LE(p + 32)
    const local = zip.readUInt32LE(p + 42)
    const member = zip.subarray(p + 46, p + 46 + nameLen).toString('utf8')
    names.push(member)
    if (member === name) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28)
      const data = zip.subarray(start, start + compSize)
      if (method === 0) return Buffer.from(data)
      if (method === 8) return inflateRawSync(data)
      throw new LmpError(`${label}: unsupported compression method ${method}`)
    }
    p += 46 + nameLen + extraLen + commentLen
  }
  throw new LmpError(`${label} has no member '${name}' (it has ${names.slice(0, 5).join(', ')})`)
}
