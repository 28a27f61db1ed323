// Shared by the browser tests: Debian's Chromium driven by playwright-core (headless, never a downloaded
// browser), the built page, and a few waits on the page's data-state attributes.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import type { Test } from 'tap'

export const CHROMIUM = '/usr/bin/chromium'
export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
/** Screenshots for a reviewer. */
export const shots = path.join(repo, 'test-output')

/** Why the browser tests cannot run here, or undefined when they can. */
export function missingBrowser(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing: run .ci/install-chromium.sh`
}

/** Builds web/dist when it is not there, and makes the screenshot folder. */
export function preparePage() {
  if (!['index.html', 'worker.js', 'gpt2-ranks.js'].every((f) => existsSync(path.join(repo, 'web', 'dist', f)))) {
    execFileSync(process.execPath, [path.join(repo, 'web', 'build.mjs')], { stdio: 'inherit' })
  }
  mkdirSync(shots, { recursive: true })
}

/** Chromium without a GPU, or (`webgpu`) with WebGPU on whatever adapter it finds: headless Chromium
 * offers its own SwiftShader (a fallback adapter) with --enable-unsafe-webgpu alone. */
export const launch = (opts: { webgpu?: boolean } = {}): Promise<Browser> =>
  chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', ...(opts.webgpu ? ['--enable-unsafe-webgpu'] : ['--disable-gpu'])] })

/**
 * The set-up every browser test file shares. Without Chromium the file's tests are skipped (and fail on
 * CI, where Chromium must be installed); otherwise the page is built and `tests` runs with a temp dir
 * and a browser that is closed at the end.
 */
export async function browserTests(t: Test, tests: (env: { root: string; browser: Browser }) => Promise<void>, opts: { webgpu?: boolean } = {}) {
  const missing = missingBrowser()
  if (missing) {
    if (process.env.CI === 'true') t.fail(missing)
    else t.plan(0, missing)
    return
  }
  preparePage()
  const root = t.testdir({})
  const browser = await launch(opts)
  t.teardown(() => browser.close())
  await tests({ root, browser })
}

/** A page that records uncaught errors and console errors (of the page and its workers). */
export async function openPage(owner: Browser | BrowserContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await owner.newPage({ viewport: { width: 1000, height: 800 } })
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
  await page.goto(url)
  return { page, problems }
}

/** Waits until body[data-state] is one of `states`; returns it with the status line. */
export async function waitForState(page: Page, states: string[], timeout = 60_000) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout })
  return page.evaluate(() => ({ state: document.body.dataset.state, status: document.getElementById('status')!.textContent ?? '' }))
}

/** Waits until the element's data-state is one of `states`. */
export async function waitForViewState(page: Page, selector: string, states: string[], timeout = 30_000): Promise<string> {
  await page.waitForFunction(({ sel, s }) => s.includes((document.querySelector(sel) as HTMLElement | null)?.dataset.state ?? ''), { sel: selector, s: states }, { timeout })
  return page.$eval(selector, (el) => (el as HTMLElement).dataset.state ?? '')
}

/** Fills the Generate form, presses Generate and waits for the end; returns the generated text and the
 * prompt as the output area shows it in front of that text. */
export async function generateOnPage(page: Page, prompt: string, opts: { maxTokens: number; temperature: number; seed?: number }) {
  await page.fill('#prompt', prompt)
  await page.fill('#max-tokens', String(opts.maxTokens))
  await page.fill('#temperature', String(opts.temperature))
  await page.fill('#seed', opts.seed === undefined ? '' : String(opts.seed))
  await page.click('#generate')
  const end = await waitForState(page, ['done', 'error'])
  return { ...end, text: await page.textContent('#output-text'), shownPrompt: await page.textContent('#output-prompt'), stats: await page.textContent('#stats') }
}
