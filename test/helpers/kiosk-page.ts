/**
 * Driving the kiosk page (client/kiosk/) from Node, for the end-to-end test and bench:kiosk: its
 * provisioning URL, `window.kioskStats`, and a log of what the page showed, written by a
 * MutationObserver installed before the page's own script runs, so that a test can assert over a
 * whole run (a name that flashed for one frame is in it too).
 *
 * The functions passed to the page run in the browser: they use only the minimal DOM shapes
 * declared here (the project's Node build has no DOM types) and nothing from this module's scope.
 */
import type { Page } from 'playwright-core'

/** The page's `window.kioskStats` (its DOM contract; performance.now() milliseconds). */
export interface KioskStats {
  connection: 'connecting' | 'open' | 'closed'
  framesSent: number
  bytesSent: number
  answers: { result: number; dropped: number; throttled: number; error: number }
  detectorMs: number[]
  roundTripMs: number[]
  decisions: KioskDecision[]
}

export interface KioskDecision {
  trackId: number
  status: 'match' | 'checking' | 'unknown' | 'prompt'
  name?: string
  /** When the browser first detected the track. */
  firstSeenAt: number
  /** When this status was first rendered. */
  decidedAt: number
}

/** One change the page showed: `#kiosk`'s screen, `#status`'s connection, `#announce`, a track. */
export interface ShownEvent {
  at: number
  kind: 'screen' | 'connection' | 'announce' | 'track'
  /** For `track`: `STATUS:NAME-TEXT`. */
  value: string
  trackId?: string
}

/** The URL an operator opens once to provision a kiosk. */
export function kioskUrl(baseUrl: string, token: string, camera = 'front-door'): string {
  return `${baseUrl}/kiosk#token=${encodeURIComponent(token)}&camera=${encodeURIComponent(camera)}`
}

interface DomElement {
  textContent: string | null
  getAttribute: (name: string) => string | null
  querySelector: (selector: string) => DomElement | null
}

interface PageGlobals {
  document: {
    readyState: string
    documentElement: unknown
    querySelector: (selector: string) => DomElement | null
    querySelectorAll: (selector: string) => Iterable<DomElement>
    addEventListener: (type: string, listener: () => void) => void
  }
  MutationObserver: new (callback: () => void) => {
    observe: (target: unknown, options: Record<string, boolean>) => void
  }
  performance: { now: () => number }
  kioskStats?: KioskStats
  kioskShown?: ShownEvent[]
}

/** Runs in the page before its scripts: records every change of what the contract exposes. */
function recordShown(): void {
  const page = globalThis as unknown as PageGlobals
  const shown: ShownEvent[] = []
  page.kioskShown = shown
  const last = new Map<string, string>()
  const note = (key: string, kind: ShownEvent['kind'], value: string | null, trackId?: string): void => {
    if (value === null || last.get(key) === value) return
    last.set(key, value)
    shown.push({ at: page.performance.now(), kind, value, ...(trackId === undefined ? {} : { trackId }) })
  }
  const snapshot = (): void => {
    const { document } = page
    note('screen', 'screen', document.querySelector('#kiosk')?.getAttribute('data-screen') ?? null)
    note(
      'connection',
      'connection',
      document.querySelector('#status')?.getAttribute('data-connection') ?? null,
    )
    note('announce', 'announce', document.querySelector('#announce')?.textContent ?? null)
    for (const track of document.querySelectorAll('.track[data-track-id]')) {
      const id = track.getAttribute('data-track-id') ?? ''
      const name = track.querySelector('.track-name')?.textContent ?? ''
      note(`track:${id}`, 'track', `${track.getAttribute('data-status') ?? ''}:${name}`, id)
    }
  }
  const start = (): void => {
    new page.MutationObserver(snapshot).observe(page.document.documentElement, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    })
    snapshot()
  }
  if (page.document.readyState === 'loading') page.document.addEventListener('DOMContentLoaded', start)
  else start()
}

/** Installs the recorder in every document the page loads from now on. */
export async function recordKiosk(page: Page): Promise<void> {
  await page.addInitScript(recordShown)
}

/** Everything the page showed so far. */
export function shownEvents(page: Page): Promise<ShownEvent[]> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).kioskShown ?? [])
}

/** A copy of `window.kioskStats`; throws when the page has none (not the kiosk, or it failed). */
export async function kioskStats(page: Page): Promise<KioskStats> {
  const stats = await page.evaluate(() => (globalThis as unknown as PageGlobals).kioskStats)
  if (stats === undefined) throw new Error('the page has no window.kioskStats')
  return stats
}

/** Waits until `#kiosk`'s data-screen is one of `screens`; returns it. */
export async function waitForScreen(
  page: Page,
  screens: readonly string[],
  timeoutMs: number,
): Promise<string> {
  try {
    const handle = await page.waitForFunction(
      (wanted) => {
        const screen = (globalThis as unknown as PageGlobals).document
          .querySelector('#kiosk')
          ?.getAttribute('data-screen')
        return screen !== undefined && screen !== null && wanted.includes(screen) ? screen : undefined
      },
      screens,
      { timeout: timeoutMs, polling: 100 },
    )
    return (await handle.jsonValue()) as string
  } catch (error) {
    throw new Error(`the kiosk did not show ${screens.join(' or ')}: ${await describePage(page)}`, {
      cause: error,
    })
  }
}

/** What the page shows now, for failure messages. */
export async function describePage(page: Page): Promise<string> {
  try {
    return await page.evaluate(() => {
      const { document } = globalThis as unknown as PageGlobals
      const screen = document.querySelector('#kiosk')?.getAttribute('data-screen') ?? 'no #kiosk'
      const detail = document.querySelector(`[data-for="${screen}"]`)?.textContent ?? ''
      const status = document.querySelector('#status')?.textContent ?? ''
      return `screen ${screen} (${detail.replace(/\s+/g, ' ').trim()}), status '${status}'`
    })
  } catch (error) {
    return `the page could not be read (${String(error)})`
  }
}

/**
 * Waits for a decision the page recorded in kioskStats.decisions with `status` (and `name`, when
 * given) decided after `afterMs` (page time); returns it.
 */
export async function waitForDecision(
  page: Page,
  wanted: { status: KioskDecision['status']; name?: string; afterMs?: number },
  timeoutMs: number,
): Promise<KioskDecision> {
  const handle = await page.waitForFunction(
    ({ status, name, afterMs }) =>
      (globalThis as unknown as PageGlobals).kioskStats?.decisions.find(
        (d) => d.status === status && (name === undefined || d.name === name) && d.decidedAt > afterMs,
      ),
    { status: wanted.status, name: wanted.name, afterMs: wanted.afterMs ?? -Infinity },
    { timeout: timeoutMs, polling: 100 },
  )
  return (await handle.jsonValue()) as KioskDecision
}

/** Waits until the page has had `count` `result` answers in all. */
export async function waitForResults(page: Page, count: number, timeoutMs: number): Promise<void> {
  await page.waitForFunction(
    (wanted) => ((globalThis as unknown as PageGlobals).kioskStats?.answers.result ?? 0) >= wanted,
    count,
    { timeout: timeoutMs, polling: 100 },
  )
}

/** The page's performance.now(). */
export function pageNow(page: Page): Promise<number> {
  return page.evaluate(() => performance.now())
}
