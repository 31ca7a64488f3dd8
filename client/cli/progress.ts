/** A one-line progress bar on a TTY stream; silent elsewhere (CI logs, pipes). */
export interface Progress {
  tick(done: number): void
  finish(): void
}

export function createProgress(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY || total <= 0) return { tick: () => undefined, finish: () => undefined }
  const started = Date.now()
  let last = 0
  const draw = (done: number): void => {
    const width = 30
    const filled = Math.round((done / total) * width)
    const elapsed = (Date.now() - started) / 1000
    const rate = done / Math.max(elapsed, 1e-3)
    const eta = rate > 0 ? Math.round((total - done) / rate) : 0
    stream.write(
      `\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${rate.toFixed(1)}/s eta ${eta}s `,
    )
  }
  return {
    tick(done) {
      const now = Date.now()
      if (now - last < 100 && done < total) return
      last = now
      draw(done)
    },
    finish() {
      draw(total)
      stream.write('\n')
    },
  }
}
