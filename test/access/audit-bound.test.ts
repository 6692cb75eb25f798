import t from 'tap'
import { buildTestApp, registerMember, scenario } from './fixtures/index.js'

// A refused attempt is audited in the currency it was aimed at, so without a bound one caller could fill another
// currency's trail. Each caller has AUDIT_REFUSALS_PER_MINUTE rows a minute per currency (the callers of another
// currency share one such window there); the rest are counted into summary rows, one per action and actor, when
// its minute is over.
t.test('one caller\'s refused attempts in a currency: a bounded number of rows, then summary rows', async (t) => {
  let now = new Date('2026-12-03T10:00:00Z')
  const ctx = await buildTestApp(t, { AUDIT_REFUSALS_PER_MINUTE: 5 }, { auditClock: () => now })
  const s = await scenario(ctx)
  await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other' } })
  await ctx.call('POST', '/v1/currencies/OTH/issuers', { token: ctx.issuerToken, body: { name: 'O', username: 'oth-iss', password: 'oth-password' } })
  const oth = await ctx.token('oth-iss', 'oth-password')
  const intruder = await registerMember(ctx, 'OTH')
  const trail = async (q = '') => (await ctx.call('GET', `/v1/currencies/${s.code}/audit?outcome=failure&limit=200${q}`, { token: ctx.issuerToken })).body.items as any[]
  const issue = async (token: string, i: number) => await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, {
    token, key: `x-${i}`, body: { toAccount: s.member.accountId, amount: '1.00', sterlingReference: 'x' }, headers: { 'x-request-id': `flood-${i}` },
  })

  // 12 refused issuances from another currency's issuer and 3 refused registrations, within one minute
  for (let i = 0; i < 12; i++) t.equal((await issue(oth, i)).status, 403)
  for (let i = 0; i < 3; i++) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/members`, { token: oth, body: { name: 'M', postcode: 'BS3 1AA', username: `m-${i}`, password: 'member-pass' } })
    t.equal(r.status, 403)
  }
  // another caller of this currency, in the same minute: its refusal is written whatever the first one did
  t.equal((await issue(s.business.token, 100)).status, 403)
  // the flooding caller's refusal in its own currency is a window of its own
  const own = await ctx.call('PATCH', `/v1/accounts/${intruder.accountId}`, { token: oth, body: { floor: '10.00' } })
  t.equal(own.status, 422)

  let rows = await trail()
  t.equal(rows.filter(e => e.actorName === 'oth-iss').length, 5, 'the flooding caller: 5 rows one by one in the minute')
  t.same(rows.filter(e => e.actorName === 'oth-iss').map(e => e.requestId), ['flood-0', 'flood-1', 'flood-2', 'flood-3', 'flood-4'], 'its first five')
  t.equal(rows.filter(e => e.actorName === s.business.username).length, 1, 'another caller\'s refusal is still written')
  const othTrail = (await ctx.call('GET', '/v1/currencies/OTH/audit?outcome=failure', { token: oth })).body.items as any[]
  t.equal(othTrail.filter(e => e.action === 'account.update' && e.errorCode === 'INVALID_LIMITS').length, 1, 'its refusal in its own currency is written')

  // the minute ends; the caller's next refusal writes the summary first, then itself (a new minute)
  now = new Date(now.getTime() + 60_000)
  t.equal((await issue(oth, 50)).status, 403)
  rows = (await trail()).filter(e => e.actorName === 'oth-iss')
  t.equal(rows.length, 8, 'five rows, a summary per action, the new minute\'s first')
  const othId = rows[0].actorId as string
  t.match(rows[5], {
    action: 'issuance.create', errorCode: 'FORBIDDEN', outcome: 'failure', role: 'issuer', currency: s.code, requestId: 'flood-5', target: null,
    detail: {
      unrecordedAttempts: 7, errorCodes: { FORBIDDEN: 7 }, actors: { [othId]: 7 }, otherActors: 0, targets: {}, otherTargets: 0,
      from: '2026-12-03T10:00:00.000Z', to: '2026-12-03T10:00:00.000Z',
    },
  }, 'the issuances not written: one summary (a refused issuance names no target)')
  t.match(rows[6], { action: 'member.register', errorCode: 'FORBIDDEN', detail: { unrecordedAttempts: 3, errorCodes: { FORBIDDEN: 3 } } },
    'the registrations not written: a summary of their own')
  t.equal(rows[7].requestId, 'flood-50')

  // a minute that ends with nobody asking again: the sweep writes its summary
  for (let i = 51; i < 60; i++) await issue(oth, i)
  t.equal((await trail()).filter(e => e.actorName === 'oth-iss').length, 12, 'four more rows this minute (five past the bound), no summary yet')
  t.equal(await ctx.app.services.audit.flushRefusals(), 0, 'the sweep before the minute is over writes nothing')
  t.equal((await trail()).filter(e => e.actorName === 'oth-iss').length, 12)
  now = new Date(now.getTime() + 60_000)
  t.equal(await ctx.app.services.audit.flushRefusals(), 0, 'no row lost')
  rows = (await trail()).filter(e => e.actorName === 'oth-iss')
  t.equal(rows.length, 13)
  t.match(rows[12], { action: 'issuance.create', detail: { unrecordedAttempts: 5 } }, 'the sweep\'s summary')
  t.match((await trail('&action=member.register')).filter(e => e.actorName === 'oth-iss'), [{ detail: { unrecordedAttempts: 3 } }],
    'the registrations, all past the bound, are found by their action: their summary')
})

t.test('a flood of one cheap refusal does not hide a different attempt after it', async (t) => {
  let now = new Date('2026-12-03T10:00:00Z')
  const ctx = await buildTestApp(t, { AUDIT_REFUSALS_PER_MINUTE: 3 }, { auditClock: () => now })
  const s = await scenario(ctx)
  const k = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till-vendor', scopes: ['payments:write'] } })
  t.equal(k.status, 201)
  const key = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: k.body.key } })).body.accessToken as string
  // the business's till key uses up the business's rows with refusals nobody cares about
  for (let i = 0; i < 10; i++) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, { token: key, key: `f${i}`, body: { toAccount: s.business.accountId, amount: '1.00', sterlingReference: 'x' } })
    t.equal(r.status, 403)
  }
  // then the business's own login tries to freeze a member's account
  const patch = await ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: s.business.token, body: { status: 'frozen' }, headers: { 'x-request-id': 'the-real-attempt' } })
  t.ok(patch.status === 403 || patch.status === 404, 'refused')
  now = new Date(now.getTime() + 60_000)
  t.equal(await ctx.app.services.audit.flushRefusals(), 0)
  const found = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=account.update&outcome=failure`, { token: ctx.issuerToken })).body.items as any[]
  t.equal(found.length, 1, 'the attempt is found by its action')
  t.match(found[0], {
    actorName: s.business.username, requestId: 'the-real-attempt', target: s.member.accountId,
    detail: { unrecordedAttempts: 1, targets: { [s.member.accountId]: 1 } },
  }, 'in the name of the login that tried it, with its target')
  const flood = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=issuance.create&outcome=failure`, { token: ctx.issuerToken })).body.items as any[]
  t.equal(flood.length, 4, 'the key\'s flood: three rows and one summary')
  t.match(flood[3], { detail: { unrecordedAttempts: 7 } })
  t.not(flood[3].actorName, s.business.username, 'filed under the key, not the login')
})

t.test('AUDIT_REFUSALS_PER_MINUTE 0 writes every refusal', async (t) => {
  const ctx = await buildTestApp(t, { AUDIT_REFUSALS_PER_MINUTE: 0 })
  const s = await scenario(ctx)
  for (let i = 0; i < 40; i++) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, { token: s.member.token, key: `y-${i}`, body: { toAccount: s.member.accountId, amount: '1.00', sterlingReference: 'x' } })
    t.equal(r.status, 403)
  }
  const rows = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?outcome=failure&action=issuance.create&limit=200`, { token: ctx.issuerToken })).body.items
  t.equal(rows.length, 40)
})

t.test('the callers of another currency share one window: many of its members cannot bury this currency\'s trail', async (t) => {
  let now = new Date('2026-12-03T10:00:00Z')
  const ctx = await buildTestApp(t, { AUDIT_REFUSALS_PER_MINUTE: 3 }, { auditClock: () => now })
  const s = await scenario(ctx)
  await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other' } })
  // another currency's issuer registers members; each tries three refused registrations in this currency
  const sybils = await Promise.all(Array.from({ length: 6 }, async () => await registerMember(ctx, 'OTH')))
  for (const [i, m] of sybils.entries()) {
    for (let j = 0; j < 3; j++) {
      const r = await ctx.call('POST', `/v1/currencies/${s.code}/members`, { token: m.token, body: { name: 'M', postcode: 'BS3 1AA', username: `s-${i}-${j}`, password: 'member-pass' } })
      t.equal(r.status, 403)
    }
  }
  // this currency's own member, in the same minute, still has a window of its own
  const own = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, {
    token: s.member.token, key: 'own-1', body: { toAccount: s.member.accountId, amount: '1.00', sterlingReference: 'x' }, headers: { 'x-request-id': 'insider' },
  })
  t.equal(own.status, 403)
  const trail = async () => (await ctx.call('GET', `/v1/currencies/${s.code}/audit?outcome=failure&limit=200`, { token: ctx.issuerToken })).body.items as any[]
  const fromOth = (rows: any[]) => rows.filter(e => sybils.some(m => m.username === e.actorName))
  t.equal(fromOth(await trail()).length, 3, 'eighteen refusals from six of its members: three rows in the minute, for all of them together')
  t.equal((await trail()).filter(e => e.requestId === 'insider').length, 1, 'this currency\'s member\'s refusal is written')
  now = new Date(now.getTime() + 60_000)
  t.equal(await ctx.app.services.audit.flushRefusals(), 0)
  const rows = fromOth(await trail())
  const summaries = rows.filter(e => e.detail?.unrecordedAttempts != null)
  t.equal(summaries.reduce((n, e) => n + Number(e.detail.unrecordedAttempts), 0), 15, 'the other fifteen are counted in summaries')
  t.ok(summaries.length <= 3 + 1, `a bounded number of summaries (${summaries.length}): per action and actor up to the bound, then one per action`)
  t.ok(summaries.every(e => e.action === 'member.register'), 'each found by its action')
})
