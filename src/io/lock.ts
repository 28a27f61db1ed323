// One writer per folder: a lock file made with link(2), which fails if the file exists, so exactly one
// process gets it. It holds the owner's pid, host and (Linux) process start time; a lock whose process is gone
// (killed, crashed) or whose pid now belongs to another process is stale and taken over, so a dead run never
// blocks the folder for good.
import { randomBytes } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { LmpError } from '../errors.ts'
import { writeError } from './atomic.ts'

export const LOCK_FILE = '.lock'

/** What a lock file holds. */
export interface LockOwner {
  pid: number
  host: string
  /** What holds it, e.g. 'lmp train-model'. */
  command: string
  /** ISO 8601 time it was taken. */
  since: string
  /** Tells this lock from an earlier one of the same pid. */
  token: string
  /** When the process started (processStart), where the system tells: a reused pid has another. */
  started?: string
}

export interface Lock {
  path: string
  owner: LockOwner
  /** Removes the lock file if it is still this lock's. Idempotent. */
  release(): void
}

/** Whether process `pid` on this host exists (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readOwner(path: string): { text: string; owner: LockOwner | null } | null {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw e
  }
  try {
    const owner = JSON.parse(text)
    return { text, owner: Number.isInteger(owner?.pid) && typeof owner?.host === 'string' ? owner : null }
  } catch {
    return { text, owner: null }
  }
}

/**
 * When process `pid` started, as Linux's /proc/PID/stat says (field 22, clock ticks since boot), or undefined
 * where there is no /proc. Together with the pid it names one process: pids are reused, start times not.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may itself hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/**
 * A lock on this host whose process is gone or is another process now (the pid reused, e.g. by a restarted
 * container), or a lock file that is not one (written by nothing of ours).
 */
function isStale(owner: LockOwner | null): boolean {
  if (owner === null) return true
  if (owner.host !== hostname()) return false
  if (!processAlive(owner.pid)) return true
  const started = processStart(owner.pid)
  return owner.started !== undefined && started !== undefined && started !== owner.started
}

/**
 * Takes the lock of folder `dir` (creating the folder) for `command`, or throws a one-line LmpError
 * naming the process that holds it. A stale lock (its process is gone) is taken over. The lock is
 * released by `release()`, and on a normal process exit; after a kill the next taker finds it stale.
 * Other hosts' processes cannot be checked: their locks hold until removed by hand (the error says how).
 */
export function lockFolder(dir: string, command: string): Lock {
  const path = join(dir, LOCK_FILE)
  const owner: LockOwner = {
    pid: process.pid, host: hostname(), command, since: new Date().toISOString(), token: randomBytes(8).toString('hex'), started: processStart(process.pid),
  }
  const text = JSON.stringify(owner) + '\n'
  // The lock file appears whole: written under a private name, then linked to the lock's name.
  const temp = join(dir, `.lock.${process.pid}.${owner.token}.tmp`)
  try {
    mkdirSync(dir, { recursive: true })
    writeFileSync(temp, text, { flag: 'wx' })
  } catch (e) {
    throw writeError(temp, e)
  }
  try {
    // A few rounds: each one either takes the lock, finds a live holder, or clears a stale lock.
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(temp, path)
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(path, e)
      }
      const held = readOwner(path)
      if (attempt >= 4 || (held && !isStale(held.owner))) throw inUse(dir, path, held?.owner ?? null)
      if (held) takeOver(path, held.text) // else: released meanwhile
    }
  } finally {
    unlinkSync(temp)
  }
  const onExit = () => lock.release()
  const lock: Lock = {
    path,
    owner,
    release() {
      process.off('exit', onExit)
      try {
        if (readOwner(path)?.owner?.token === owner.token) unlinkSync(path)
      } catch {
        // already gone; or unreadable, and then the next taker finds it stale
      }
    },
  }
  process.on('exit', onExit)
  return lock
}

/** Runs `fn` holding the lock of `dir`; releases it however `fn` ends. */
export async function withFolderLock<T>(dir: string, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = lockFolder(dir, command)
  try {
    return await fn()
  } finally {
    lock.release()
  }
}

/**
 * Removes a stale lock file whose contents were `staleText`. It is first renamed to a private name: if
 * another process took the lock over in the meantime, what was moved is that process's fresh lock, and it is
 * put back.
 */
function takeOver(path: string, staleText: string) {
  const moved = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.stale`
  try {
    renameSync(path, moved)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return // someone else removed it
    throw writeError(path, e)
  }
  if (readFileSync(moved, 'utf8') !== staleText) {
    try {
      linkSync(moved, path)
    } catch {
      // a third process holds the lock now; it stays the holder
    }
  }
  unlinkSync(moved)
}

function inUse(dir: string, path: string, owner: LockOwner | null): LmpError {
  const who = owner ? `${owner.command} (pid ${owner.pid}${owner.host === hostname() ? '' : ` on ${owner.host}`}, since ${owner.since})` : 'another process'
  return new LmpError(`${dir} is in use by ${who}; wait for it to finish, or delete ${path} if that process is gone`, 409)
}
