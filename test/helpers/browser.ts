/**
 * A headless Chromium for the kiosk's end-to-end test and benchmark: Debian's chromium (or
 * $FACEWIRE_CHROMIUM) driven through playwright-core, its camera a fake device that plays a .y4m
 * file (test/helpers/video.ts) with the permission prompt granted. Every request the page makes
 * (documents, scripts, fetches, WebSockets, workers) and every console error is collected, so a
 * test can assert that nothing left the server's origin.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

/** Debian's package path; CI installs it with `apt-get install chromium`. */
export const DEFAULT_CHROMIUM = '/usr/bin/chromium'

export interface KioskBrowser {
  browser: Browser
  context: BrowserContext
  page: Page
  /** Every URL the page or its workers requested, WebSockets included, in order. */
  requests: string[]
  /** console.error lines and uncaught exceptions. */
  consoleErrors: string[]
  /** The requested URLs whose origin is not `origin` (data: and blob: URLs are local). */
  foreignRequests: (origin: string) => string[]
  close: () => Promise<void>
}

export interface LaunchOptions {
  /** The fake camera's video (.y4m). */
  videoFile: string
  /** The chromium binary; $FACEWIRE_CHROMIUM or DEFAULT_CHROMIUM by default. */
  executablePath?: string
  viewport?: { width: number; height: number }
}

/** The chromium to launch, or an error that says how to get one (never a silent skip). */
export function chromiumPath(explicit?: string): string {
  const path = explicit ?? process.env['FACEWIRE_CHROMIUM'] ?? DEFAULT_CHROMIUM
  if (!existsSync(path)) {
    throw new Error(
      `Chromium is not at ${path}: the kiosk's browser tests need it. Install it (apt-get install chromium) ` +
        'or point FACEWIRE_CHROMIUM at a Chromium binary.',
    )
  }
  return path
}

/** Whether `url` is served by `origin` (http or ws on the same host and port), or is local data. */
export function isSameOrigin(url: string, origin: string): boolean {
  const parsed = new URL(url)
  if (parsed.protocol === 'data:' || parsed.protocol === 'blob:') return true
  const own = new URL(origin)
  const scheme = (protocol: string): string => protocol.replace(/^ws/, 'http')
  return parsed.host === own.host && scheme(parsed.protocol) === scheme(own.protocol)
}

/** A headless Chromium without a camera, for pages that only fetch (the CORS test). */
export function launchHeadlessChromium(executablePath?: string): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(executablePath),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  })
}

export async function launchKioskBrowser(options: LaunchOptions): Promise<KioskBrowser> {
  const browser = await chromium.launch({
    executablePath: chromiumPath(options.executablePath),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${options.videoFile}`,
    ],
  })
  try {
    const context = await browser.newContext({ viewport: options.viewport ?? { width: 1024, height: 768 } })
    const requests: string[] = []
    const consoleErrors: string[] = []
    context.on('request', (request) => requests.push(request.url()))
    const page = await context.newPage()
    page.on('websocket', (socket) => requests.push(socket.url()))
    page.on('worker', (worker) => requests.push(worker.url()))
    page.on('console', (message) => {
      if (message.type() !== 'error') return
      const { url } = message.location()
      consoleErrors.push(url === '' ? message.text() : `${message.text()} (${url})`)
    })
    page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`))
    return {
      browser,
      context,
      page,
      requests,
      consoleErrors,
      foreignRequests: (origin) => requests.filter((url) => !isSameOrigin(url, origin)),
      close: () => browser.close(),
    }
  } catch (error) {
    await browser.close()
    throw error
  }
}
