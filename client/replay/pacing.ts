/**
 * When each frame goes out: at its recorded time (frames.jsonl), at a fixed rate, or as soon as
 * the previous frame is answered; and the two waits the replay makes, on the clock and for answers.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { ReplaySource } from './source.js'

export type Pace = { kind: 'recorded' } | { kind: 'fps'; fps: number } | { kind: 'max' }

export interface PlannedSend {
  /** Index into the source's frames. */
  index: number
  /** When to send it, ms after the replay starts (unused at --max). */
  offsetMs: number
}

/**
 * The sends of one stream: every frame of every loop, with its time. `fallbackFps` spaces the
 * loops of a one-frame recording.
 */
export function planSends(
  source: ReplaySource,
  pace: Pace,
  loops: number,
  fallbackFps: number,
): PlannedSend[] {
  const frames = source.frames
  const out: PlannedSend[] = []
  const first = frames[0]?.t ?? 0
  const span = (frames[frames.length - 1]?.t ?? 0) - first
  // A loop starts one mean frame interval after the previous loop's last frame.
  const period = span + (frames.length > 1 ? span / (frames.length - 1) : 1000 / fallbackFps)
  for (let loop = 0; loop < loops; loop++) {
    for (const [index, frame] of frames.entries()) {
      const position = out.length
      const offsetMs =
        pace.kind === 'recorded'
          ? loop * period + (frame.t ?? 0) - first
          : pace.kind === 'fps'
            ? (position * 1000) / pace.fps
            : 0
      out.push({ index, offsetMs })
    }
  }
  return out
}

/** Resolves with `promise`'s value, or undefined after `ms` or on abort; leaves no timer behind. */
export function within<T>(promise: Promise<T>, ms: number, signal: AbortSignal): Promise<T | undefined> {
  return new Promise((resolve) => {
    const finish = (value: T | undefined): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(value)
    }
    const onAbort = (): void => {
      finish(undefined)
    }
    const timer = setTimeout(onAbort, ms)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(finish, onAbort)
  })
}

/** Waits until `performance.now()` reaches `due` (timers run on whole milliseconds and may wake early). */
export async function until(due: number, signal: AbortSignal): Promise<void> {
  for (let left = due - performance.now(); left > 0 && !signal.aborted; left = due - performance.now()) {
    await sleep(Math.ceil(left), undefined, { signal }).catch(() => undefined)
  }
}
