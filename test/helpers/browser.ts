// Driving the web page in Debian's Chromium with playwright-core (never a downloaded browser).
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/** Chromium, or null with the reason when it is not installed (callers fail under CI, skip elsewhere). */
export async function launchChromium(): Promise<Browser | null> {
  if (!existsSync(CHROMIUM)) return null
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] })
}

/** Wait until the page's body[data-state] is one of `states`; returns it and the status line. */
export async function waitForState(page: Page, states: string[], timeout = 60_000) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout })
  return page.evaluate(() => ({ state: document.body.dataset.state, status: document.getElementById('status')!.textContent }))
}

/** Fill the generate form, press Generate and wait for the end; returns the generated text. */
export async function generateOnPage(page: Page, prompt: string, opts: { maxTokens: number; temperature: number; seed?: number }) {
  await page.fill('#prompt', prompt)
  await page.fill('#max-tokens', String(opts.maxTokens))
  await page.fill('#temperature', String(opts.temperature))
  await page.fill('#seed', opts.seed === undefined ? '' : String(opts.seed))
  await page.click('#generate')
  const end = await waitForState(page, ['done', 'error'])
  return { ...end, text: await page.textContent('#output-text'), stats: await page.textContent('#stats') }
}
