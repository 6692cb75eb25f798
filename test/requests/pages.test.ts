import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../../support/ports.js'
import { balance, buildTestApp, issue, scenario } from '../helper.js'
import { ensureChromium, openBrowser } from '../../support/browser.js'

// The shop pages in Debian's chromium (playwright-core): /pay/{id} on a phone-sized viewport (open the link, log
// in, pay, see the new balance) and /till (ask on the page, pay through the API as a member, the page shows it
// paid within 2 s). Both run under the service's Content-Security-Policy and fetch nothing from another host.

const SCREENSHOTS = path.resolve('.tap', 'screenshots')

t.test('the pages and their assets are served by the service itself', async (t) => {
  const ctx = await buildTestApp(t)
  for (const url of ['/till', '/pay/0190a000-0000-7000-8000-000000000000']) {
    const page = await ctx.app.inject({ method: 'GET', url })
    t.equal(page.statusCode, 200, url)
    t.match(page.headers['content-type'], /^text\/html/)
    t.match(String(page.headers['content-security-policy']), /script-src 'self'/, 'under the CSP')
    t.notMatch(String(page.headers['content-security-policy']), /unsafe-inline|unsafe-eval|\*/, 'which allows no inline script, eval or wildcard')
    t.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/, 'and no framing (clickjacking a one-tap pay button)')
    t.notMatch(page.body, /https?:\/\//, `${url} refers to no other host`)
    for (const a of [...page.body.matchAll(/(?:src|href)="(\/pages\/[^"]+)"/g)].map(m => m[1])) {
      const r = await ctx.app.inject({ method: 'GET', url: a })
      t.equal(r.statusCode, 200, `${a} is served`)
      t.notMatch(r.body, /https?:\/\//, `${a} refers to no other host`)
    }
  }
})

t.test('the pages put what the API says (payee and payer names, references) into text, never into HTML', async (t) => {
  // names and references are whatever a participant typed (a reference of "<img src=x onerror=...>" is kept as
  // it is by the API); the pages write them with textContent only, and load no script the CSP would not allow
  const dir = path.resolve('public/pages')
  for (const f of fs.readdirSync(dir).filter(f => f.endsWith('.js') || f.endsWith('.html'))) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    t.notMatch(text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*['"]on/, `${f} writes no HTML from data`)
    if (f.endsWith('.html')) t.notMatch(text, /<script(?![^>]*\ssrc=)|\son[a-z]+=/i, `${f} has no inline script or handler`)
  }
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const xss = '<img src=x onerror="alert(1)">'
  const r = await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
    token: s.business.token, key: 'xss-1', body: { toAccount: s.business.accountId, amount: '1.00', reference: xss },
  })
  t.equal(r.status, 201)
  t.equal(r.body.reference, xss, 'the API keeps the text as typed (JSON, not HTML)')
  t.equal((await ctx.app.inject({ method: 'GET', url: `/v1/payment-requests/${String(r.body.id)}`, headers: { authorization: `Bearer ${s.member.token}` } })).headers['content-type'], 'application/json; charset=utf-8')
})

const skip = ensureChromium() == null ? 'chromium is missing and could not be installed (run scripts/ensure-chromium.sh as root)' : false

t.test('in a browser: pay on a phone, and the till turns paid within 2 s of the payment', { skip }, async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const port = await freePort()
  await ctx.app.listen({ host: '127.0.0.1', port })
  const base = `http://127.0.0.1:${port}`
  const browser = await openBrowser()
  t.teardown(browser.close)
  fs.mkdirSync(SCREENSHOTS, { recursive: true })

  const watch = async (page: import('playwright-core').Page) => {
    const foreign: string[] = []
    const violations: string[] = []
    const errors: string[] = []
    page.on('request', r => { if (!r.url().startsWith(base)) foreign.push(r.url()) })
    page.on('console', m => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()) })
    page.on('pageerror', e => { errors.push(e.message) })
    return { foreign, violations, errors }
  }

  await t.test('/pay/{id} on a phone: open the link, log in, pay, see the new balance', async (t) => {
    // over HTTP, so the links carry the address the till reached the service on
    const res = await fetch(`${base}/v1/currencies/${s.code}/payment-requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.business.token}`, 'content-type': 'application/json', 'idempotency-key': 'pay-page-1' },
      body: JSON.stringify({ toAccount: s.business.accountId, amount: '12.60', reference: 'Two coffees' }),
    })
    const asked = { status: res.status, body: await res.json() as { id: string, payUrl: string, qr: string } }
    t.equal(asked.status, 201)
    t.equal(asked.body.payUrl, `${base}/pay/${asked.body.id}`)
    const page = await browser.context.newPage()
    await page.setViewportSize({ width: 390, height: 844 })
    const seen = await watch(page)
    await page.goto(asked.body.qr)
    await page.waitForSelector('#login-view:not([hidden])')
    await page.fill('#username', s.member.username)
    await page.fill('#password', 'member-password')
    await page.click('#login-form button[type=submit]')
    await page.waitForSelector('#actions:not([hidden])', { timeout: 20_000 })
    t.equal(await page.textContent('#amount'), `12.60 ${s.code}`, 'how much')
    t.match(await page.textContent('#payee') ?? '', /^Cafe /, 'who asks')
    t.equal(await page.textContent('#reference'), 'Two coffees', 'and why')
    t.equal(await page.textContent('#balance'), `100.00 ${s.code}`, 'the balance before')
    await page.click('#pay')
    await page.waitForSelector('#status[data-status="paid"]', { timeout: 20_000 })
    await page.waitForFunction((code) => document.getElementById('balance')?.textContent === `87.40 ${code}`, s.code, { timeout: 20_000 })
    t.pass('the page shows the new balance')
    t.equal(await balance(ctx, s.member.accountId), '87.40')
    // the balance is shown only once the statement has answered, so the statement already holds the payment
    t.match(await page.textContent('#statement') ?? '', /Two coffees/, 'and the payment in the recent statement, with the new balance')
    t.ok(await page.isHidden('#actions'), 'no second tap')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'pay.png'), fullPage: true })
    t.same(seen.foreign, [], 'nothing fetched from another host')
    t.same(seen.violations, [], 'no CSP violation')
    t.same(seen.errors, [], 'no script error')
    await page.close()
  })

  await t.test('/till: ask on the page, pay through the API, the page shows it paid within 2 s', async (t) => {
    const page = await browser.context.newPage()
    await page.setViewportSize({ width: 800, height: 1000 })
    const seen = await watch(page)
    await page.goto(`${base}/till`)
    await page.fill('#username', s.business.username)
    await page.fill('#password', 'business-password')
    await page.click('#login-form button[type=submit]')
    await page.waitForSelector('#ask-view:not([hidden])', { timeout: 20_000 })
    await page.fill('#ask-amount', '4.50')
    await page.fill('#ask-reference', 'Sourdough loaf')
    await page.click('#ask-form button[type=submit]')
    await page.waitForSelector('#qr svg', { timeout: 20_000 })
    const link = await page.getAttribute('#pay-link', 'href') ?? ''
    const id = /\/pay\/([0-9a-f-]{36})$/.exec(link)?.[1]
    t.ok(id != null, `the page shows the pay link (${link})`)
    t.equal(await page.getAttribute('#status', 'data-status'), 'pending')
    // the page's long-poll is waiting, as at a real till (polled, bounded; no fixed sleep)
    for (const deadline = Date.now() + 10_000; ctx.app.services.requests.waiting() < 1;) {
      if (Date.now() > deadline) throw new Error('the page never long-polled')
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    const paid = await ctx.call('POST', `/v1/payment-requests/${id}/payments`, {
      token: s.member.token, key: 'till-pay-1', body: { fromAccount: s.member.accountId, channel: 'till' },
    })
    t.equal(paid.status, 201)
    const committed = Date.now()
    await page.waitForSelector('#status[data-status="paid"]', { timeout: 2000 })
    const lag = Date.now() - committed
    t.ok(lag < 2000, `the till shows it paid ${lag} ms after the payment committed`)
    t.equal(await page.textContent('#paid-by'), 'by Test Member', 'with the payer\'s name')
    t.ok(await page.isHidden('#cancel'), 'a paid request offers no Cancel')
    t.ok(await page.isVisible('#next'), 'but the next customer')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'till.png') })
    t.same(seen.foreign, [], 'nothing fetched from another host')
    t.same(seen.violations, [], 'no CSP violation')
    t.same(seen.errors, [], 'no script error')
    await page.close()
  })
})
