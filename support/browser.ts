import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

// Debian's chromium driven by playwright-core (never a browser downloaded by playwright: the network is closed).
export const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Chromium's path, installing it with scripts/ensure-chromium.sh if it is missing; null if it cannot be had. */
export function ensureChromium (): string | null {
  if (fs.existsSync(CHROMIUM)) return CHROMIUM
  const script = new URL('../scripts/ensure-chromium.sh', import.meta.url).pathname
  spawnSync('bash', [script], { stdio: 'inherit', timeout: 600_000 })
  return fs.existsSync(CHROMIUM) ? CHROMIUM : null
}

/** A fresh browser with an empty profile of its own, removed on close. timezoneId: the browser's own zone. */
export async function openBrowser (opts: { timezoneId?: string } = {}): Promise<{ context: BrowserContext, close: () => Promise<void> }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, acceptDownloads: true, viewport: { width: 1400, height: 1000 }, ...opts,
  })
  return {
    context,
    close: async () => { await context.close(); fs.rmSync(profile, { recursive: true, force: true }) },
  }
}

/** Logs in on the dashboard and waits until every chart has drawn (or the page reports an error). */
export async function logIn (page: Page, base: string, username: string, password: string): Promise<void> {
  await page.goto(`${base}/dashboard`)
  await page.fill('#username', username)
  await page.fill('#password', password)
  await page.click('#login-form button[type=submit]')
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 120_000 })
}

/** Per chart: how many finite points each dataset holds, read from Chart.js's own data arrays. */
export async function chartPoints (page: Page): Promise<Record<string, number[]>> {
  return await page.evaluate(() => {
    const d = (window as unknown as { dashboard: { charts: Record<string, { data: { datasets: Array<{ data: unknown[] }> } }> } }).dashboard
    return Object.fromEntries(Object.entries(d.charts).map(([id, c]) =>
      [id, c.data.datasets.map(s => s.data.filter(v => typeof v === 'number' && Number.isFinite(v)).length)]))
  })
}
