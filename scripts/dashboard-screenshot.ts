import { parseArgs } from 'node:util'
import { chartPoints, ensureChromium, logIn, openBrowser } from '../support/browser.js'

// Takes a screenshot of the dashboard of a running service with Debian's chromium, e.g. for docs/dashboard.png:
//   npx tsx scripts/dashboard-screenshot.ts --url http://127.0.0.1:3000 --username researcher --password ... \
//     [--interval month] [--out docs/dashboard.png]
const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:3000' }, username: { type: 'string' }, password: { type: 'string' },
    interval: { type: 'string', default: 'month' }, out: { type: 'string', default: 'docs/dashboard.png' },
  },
})
if (values.username == null || values.password == null) throw new Error('--username and --password are required')
if (ensureChromium() == null) throw new Error('chromium is missing (scripts/ensure-chromium.sh)')
const browser = await openBrowser()
try {
  const page = await browser.context.newPage()
  await logIn(page, values.url, values.username, values.password)
  if (values.interval !== 'month') {
    await page.selectOption('#interval', values.interval)
    await page.click('#controls button[type=submit]')
    await page.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 120_000 })
  }
  const state = await page.evaluate(() => document.body.dataset.state)
  if (state !== 'ready') throw new Error(`the dashboard did not load: ${await page.textContent('#report-error')}`)
  console.log('points per chart:', JSON.stringify(await chartPoints(page)))
  await page.screenshot({ path: values.out, fullPage: true })
  console.log(`saved ${values.out}`)
} finally {
  await browser.close()
}
