// A one-line progress bar on stderr. On a terminal it redraws in place; elsewhere (CI logs, pipes) it
// prints a plain line about every 10% so logs stay readable.

export class ProgressBar {
  private start = performance.now()
  private lastPrinted = -1
  private readonly tty: boolean

  constructor(
    readonly label: string,
    readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY)
  }

  update(done: number, info = '') {
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1
    const elapsed = (performance.now() - this.start) / 1000
    const eta = frac > 0 ? elapsed * (1 / frac - 1) : 0
    const width = 24
    const filled = Math.round(frac * width)
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled)
    const line = `${this.label} ${bar} ${done}/${this.total} ${info} [${fmt(elapsed)}<${fmt(eta)}]`
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${line}`)
    } else {
      const decile = Math.floor(frac * 10)
      if (decile !== this.lastPrinted) {
        this.lastPrinted = decile
        this.stream.write(line + '\n')
      }
    }
  }

  done(info = '') {
    this.update(this.total, info)
    if (this.tty) this.stream.write('\n')
  }
}

function fmt(seconds: number) {
  const s = Math.round(seconds)
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
}
