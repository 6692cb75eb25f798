import pg from 'pg'
import t from 'tap'
import { balance, buildTestApp, ISSUER, issue, scenario } from './fixtures/index.js'

const req = (id: string) => ({ 'x-request-id': id })

t.test('the audit trail records issuer actions, logins and API keys, and refused attempts', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const brs = s.currency.code as string
  const platform = (await ctx.app.prisma.appUser.findUniqueOrThrow({ where: { username: ISSUER.username } })).id
  const call = async (method: string, url: string, o: Parameters<typeof ctx.call>[2], requestId: string, status: number) => {
    const r = await ctx.call(method, url, { ...o, headers: { ...(o?.headers ?? {}), ...req(requestId) } })
    t.equal(r.status, status, `${method} ${url} → ${status}`)
    return r
  }

  const researcher = await call('POST', `/v1/currencies/${brs}/researchers`, { token: ctx.issuerToken, body: { name: 'R', username: 'res-1', password: 'research-pass' } }, 'rq-researcher', 201)
  const staff = await call('POST', `/v1/currencies/${brs}/issuers`, { token: ctx.issuerToken, body: { name: 'I', username: 'iss-1', password: 'issuer-pass1' } }, 'rq-issuer', 201)
  await call('POST', '/v1/auth/token', { body: { username: 'iss-1', password: 'wrong-password' } }, 'rq-login-bad', 401)
  await call('POST', '/v1/auth/token', { body: { username: 'nobody-here', password: 'wrong-password' } }, 'rq-login-unknown', 401)
  const issuer = (await call('POST', '/v1/auth/token', { body: { username: 'iss-1', password: 'issuer-pass1' } }, 'rq-login', 200)).body.accessToken
  const iss = await call('POST', `/v1/currencies/${brs}/issuances`, {
    token: issuer, key: 'i-1', body: { toAccount: s.business.accountId, amount: '40.00', sterlingReference: 'bank-1' },
  }, 'rq-issuance', 201)
  await call('POST', `/v1/currencies/${brs}/issuances`, {
    token: issuer, key: 'i-1', body: { toAccount: s.business.accountId, amount: '40.00', sterlingReference: 'bank-1' },
  }, 'rq-issuance-replay', 201)
  await call('POST', `/v1/currencies/${brs}/redemptions`, { token: issuer, key: 'r-1', body: { fromAccount: s.business.accountId, amount: '10.00' } }, 'rq-redeem', 201)
  await call('POST', `/v1/currencies/${brs}/redemptions`, { token: s.business.token, key: 'r-2', body: { fromAccount: s.business.accountId, amount: '5.00' } }, 'rq-redeem-biz', 201)
  const pay = await call('POST', `/v1/currencies/${brs}/payments`, {
    token: s.business.token, key: 'p-1', body: { fromAccount: s.business.accountId, toAccount: s.member.accountId, amount: '3.00', channel: 'app' },
  }, 'rq-pay-biz', 201)
  await call('POST', `/v1/currencies/${brs}/payments`, {
    token: issuer, key: 'p-2', body: { fromAccount: s.business.accountId, toAccount: s.member.accountId, amount: '1.00', channel: 'online' },
  }, 'rq-pay-issuer', 201)
  await call('POST', `/v1/transfers/${pay.body.id as string}/reversal`, { token: issuer, key: 'v-1' }, 'rq-reverse', 201)
  await call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: issuer, body: { ceiling: '500.00' } }, 'rq-patch', 200)
  await call('POST', `/v1/currencies/${brs}/issuances`, {
    token: s.member.token, key: 'i-x', body: { toAccount: s.member.accountId, amount: '1000.00', sterlingReference: 'none' },
  }, 'rq-member-issues', 403)
  await call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: issuer, body: { floor: '10.00' } }, 'rq-patch-refused', 422)
  const key = await call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['accounts:read'] } }, 'rq-key', 201)
  await call('POST', '/v1/auth/token', { body: { apiKey: key.body.key } }, 'rq-key-login', 200)
  await call('DELETE', `/v1/api-keys/${key.body.id as string}`, { token: s.business.token }, 'rq-key-revoke', 204)
  await call('POST', '/v1/auth/token', { body: { apiKey: key.body.key } }, 'rq-key-login-revoked', 401)

  const trail = await ctx.call('GET', `/v1/currencies/${brs}/audit?limit=200`, { token: issuer })
  t.equal(trail.status, 200)
  const by = (rid: string) => trail.body.items.filter((e: any) => e.requestId === rid)
  const one = (rid: string, want: Record<string, unknown>) => {
    const rows = by(rid)
    t.equal(rows.length, 1, `${rid}: one row`)
    t.match(rows[0], { currency: brs, clientAddress: '127.0.0.1', ...want }, `${rid}: ${String(want.action)}`)
  }
  one('rq-researcher', { action: 'researcher.register', actorId: platform, role: 'platform_issuer', target: researcher.body.id, outcome: 'success' })
  one('rq-issuer', { action: 'issuer.register', actorId: platform, target: staff.body.id, outcome: 'success' })
  one('rq-login-bad', { action: 'auth.login', actorId: null, actorName: 'iss-1', target: staff.body.id, outcome: 'failure', errorCode: 'INVALID_CREDENTIALS' })
  one('rq-login', { action: 'auth.login', actorId: staff.body.id, actorName: 'iss-1', role: 'issuer', outcome: 'success' })
  one('rq-issuance', {
    action: 'issuance.create', actorId: staff.body.id, actorName: 'iss-1', role: 'issuer', target: s.business.accountId, outcome: 'success',
    detail: { amount: '40.00', sterlingReference: 'bank-1', transferId: iss.body.id },
  })
  t.same(by('rq-issuance-replay'), [], 'a replay is not a second action')
  one('rq-redeem', { action: 'redemption.create', role: 'issuer', target: s.business.accountId, outcome: 'success' })
  t.same(by('rq-redeem-biz'), [], 'a business redeeming is in the ledger, not the audit trail')
  t.same(by('rq-pay-biz'), [], 'nor a business paying')
  one('rq-pay-issuer', { action: 'payment.create', role: 'issuer', target: s.business.accountId, outcome: 'success' })
  one('rq-reverse', { action: 'transfer.reverse', role: 'issuer', target: pay.body.id, outcome: 'success', detail: { kind: 'payment', amount: '3.00' } })
  one('rq-patch', { action: 'account.update', target: s.member.accountId, outcome: 'success', detail: { before: { ceiling: null }, change: { ceiling: '500.00' } } })
  one('rq-member-issues', { action: 'issuance.create', actorId: String, role: 'member', outcome: 'failure', errorCode: 'FORBIDDEN' })
  one('rq-patch-refused', { action: 'account.update', outcome: 'failure', errorCode: 'INVALID_LIMITS' })
  one('rq-key', { action: 'api_key.create', role: 'business', target: key.body.id, outcome: 'success', detail: { name: 'till', scopes: ['accounts:read'] } })
  one('rq-key-login', { action: 'auth.api_key', actorId: key.body.id, actorName: 'apikey:till', outcome: 'success' })
  one('rq-key-revoke', { action: 'api_key.revoke', target: key.body.id, outcome: 'success' })
  one('rq-key-login-revoked', { action: 'auth.api_key', target: key.body.id, outcome: 'failure', errorCode: 'INVALID_CREDENTIALS', detail: { revoked: true } })
  t.notOk(trail.body.items.some((e: any) => JSON.stringify(e).includes(key.body.key.slice(11))), 'no row holds an API key')

  const all = await ctx.call('GET', '/v1/audit?limit=200', { token: ctx.issuerToken })
  const unknown = all.body.items.filter((e: any) => e.requestId === 'rq-login-unknown')
  t.equal(unknown.length, 1)
  t.match(unknown[0], { currency: null, actorName: 'nobody-here' }, 'an unknown username\'s failure belongs to no currency: only the platform issuer sees it')
  t.notOk(by('rq-login-unknown').length, 'the currency\'s trail does not show it')
  const rowsOf = (action: string, target: string) => all.body.items.filter((e: any) => e.action === action && e.target === target).length
  t.equal(rowsOf('currency.create', brs), 1, 'currency creation is audited, once')
  t.equal(rowsOf('member.register', s.member.id), 1, 'member registration is audited, once')
  t.equal(rowsOf('business.register', s.business.id), 1, 'business registration is audited, once')
  const filtered = await ctx.call('GET', `/v1/audit?currency=${brs}&action=auth.login&outcome=failure`, { token: ctx.issuerToken })
  t.same(filtered.body.items.map((e: any) => e.requestId), ['rq-login-bad'], 'filters by currency, action and outcome')
  const byActor = await ctx.call('GET', `/v1/currencies/${brs}/audit?actor=${staff.body.id as string}`, { token: issuer })
  t.same(byActor.body.items.map((e: any) => e.id), trail.body.items.filter((e: any) => e.actorId === staff.body.id).map((e: any) => e.id),
    'filters by actor: exactly the staff member\'s rows of the trail')
  t.equal(byActor.body.items.length, 7, 'the staff member\'s seven: login, issuance, redemption, payment, reversal, two account changes')

  // Pages: every row once, in order.
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const r: any = await ctx.call('GET', `/v1/currencies/${brs}/audit?limit=3${cursor != null ? `&cursor=${cursor}` : ''}`, { token: issuer })
    seen.push(...r.body.items.map((e: any) => e.id))
    cursor = r.body.nextCursor
  } while (cursor != null)
  t.same(seen, trail.body.items.map((e: any) => e.id), 'cursor pages give the whole trail once, oldest first')
})

t.test('an issuer reads only its own currency\'s trail', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other' } })
  await ctx.call('POST', '/v1/currencies/OTH/issuers', { token: ctx.issuerToken, body: { name: 'O', username: 'oth-iss', password: 'oth-password' } })
  const oth = await ctx.token('oth-iss', 'oth-password')
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/audit`, { token: oth })).status, 403)
  const own = await ctx.call('GET', '/v1/currencies/OTH/audit', { token: oth })
  t.equal(own.status, 200)
  t.same([...new Set(own.body.items.map((e: any) => e.currency))], ['OTH'], 'only OTH rows')
  t.equal((await ctx.call('GET', '/v1/audit', { token: oth })).status, 403, 'the whole trail is the platform issuer\'s')
  const tried = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, {
    token: oth, key: 'x', body: { toAccount: s.member.accountId, amount: '1.00', sterlingReference: 'x' },
  })
  t.equal(tried.status, 403)
  const brs = await ctx.call('GET', `/v1/currencies/${s.code}/audit?outcome=failure`, { token: ctx.issuerToken })
  const tries = brs.body.items.filter((e: any) => e.action === 'issuance.create')
  t.equal(tries.length, 1, 'one refused issuance in this currency\'s trail')
  t.match(tries[0], { errorCode: 'FORBIDDEN', role: 'issuer', outcome: 'failure' }, 'another currency\'s issuer trying an issuance here shows in this currency\'s trail')
})

t.test('audit rows cannot be updated, deleted or truncated', async (t) => {
  const ctx = await buildTestApp(t)
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => { await db.end() })
  const before = (await db.query('SELECT count(*)::int AS n FROM audit_event')).rows[0].n
  t.ok(before > 0, 'the platform login wrote a row')
  await t.rejects(db.query(`UPDATE audit_event SET outcome = 'failure'`), /append-only/)
  await t.rejects(db.query('DELETE FROM audit_event'), /append-only/)
  await t.rejects(db.query('TRUNCATE audit_event'), /append-only/)
  t.equal((await db.query('SELECT count(*)::int AS n FROM audit_event')).rows[0].n, before, 'every row is still there')
})

t.test('no issuer action commits without its audit row', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => { await db.end() })
  // Make writing the audit row fail for these actions: the action itself must fail with it.
  await db.query(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.action IN ('member.register', 'issuance.create', 'account.update') THEN RAISE EXCEPTION 'audit unavailable'; END IF; RETURN NEW; END $$`)
  await db.query('CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION refuse_audit()')
  const inject = async (method: 'POST' | 'PATCH', url: string, payload: object, key?: string) => await ctx.app.inject({
    method, url, payload, headers: { authorization: `Bearer ${ctx.issuerToken}`, ...(key != null ? { 'idempotency-key': key } : {}) },
  })

  t.equal((await inject('POST', `/v1/currencies/${s.code}/members`, { name: 'N', postcode: 'BS6 5AB', username: 'lost-member', password: 'member-password' })).statusCode, 500)
  t.equal(await ctx.app.prisma.appUser.count({ where: { username: 'lost-member' } }), 0, 'the member was not registered')
  t.equal((await inject('POST', `/v1/currencies/${s.code}/issuances`, { toAccount: s.member.accountId, amount: '5.00', sterlingReference: 'b' }, 'lost')).statusCode, 500)
  t.equal(await balance(ctx, s.member.accountId), '10.00', 'the issuance was not posted')
  t.equal((await inject('PATCH', `/v1/accounts/${s.member.accountId}`, { status: 'frozen' })).statusCode, 500)
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken })).body.status, 'active', 'the account was not frozen')
})

t.test('an account change records the account as it was when the change was made, not as an earlier read saw it', async (t) => {
  // Two issuers change one account at once: the second waited for the first's lock, but its row's `before` was
  // read before it waited, so the trail said the account went from active to a new floor while it was frozen.
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const hold = await ctx.app.pool.connect()
  t.teardown(() => { hold.release() })
  await hold.query('BEGIN')
  await hold.query('UPDATE account SET status = \'frozen\' WHERE id = $1', [s.member.accountId])
  const patching = ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken, body: { ceiling: '500.00' } })
  const waiting = async () => (await ctx.app.pool.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%account%'")).rows[0].n > 0
  for (let i = 0; i < 500 && !await waiting(); i++) await new Promise(resolve => setTimeout(resolve, 10))
  await hold.query('COMMIT')
  const r = await patching
  t.equal(r.status, 200, r.text)
  t.match(r.body, { status: 'frozen', ceiling: '500.00' })
  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=account.update`, { token: ctx.issuerToken })).body.items as any[]
  t.equal(trail.length, 1)
  t.same(trail[0].detail.before, { status: 'frozen', floor: '0.00', ceiling: null }, 'before is the account the change was applied to')
})

t.test('a filtered page looks at most AUDIT_WINDOW rows of the trail: a rare match gives shorter pages that go on in nextCursor', async (t) => {
  const ctx = await buildTestApp(t, { AUDIT_WINDOW: 5 })
  const s = await scenario(ctx)
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  // 12 rows of one action, then one rare row, then 3 more: appended as the service would (the table takes inserts only)
  const write = async (action: string, n: number) => {
    for (let i = 0; i < n; i++) {
      await ctx.app.pool.query(`INSERT INTO audit_event (actor_id, action, currency_id, outcome, target) VALUES ('tester', $1, $2, 'success', $3)`,
        [action, currencyId, `${action}-${i}`])
    }
  }
  const { rows: [{ start }] } = await ctx.app.pool.query<{ start: string }>('SELECT max(id)::text AS start FROM audit_event')
  await write('account.update', 12)
  await write('webhook.retry', 1)
  await write('account.update', 3)
  // from the rows the scenario wrote on: a cursor made as the service makes them
  const from = Buffer.from(JSON.stringify([start])).toString('base64url')
  const pages = async (base: string, q: string) => {
    const out: string[][] = []
    let cursor: string | null = from
    do {
      const page: { status: number, body: { items: Array<{ target: string }>, nextCursor: string | null } } =
        await ctx.call('GET', `${base}?limit=3&${q}&cursor=${cursor}`, { token: ctx.issuerToken })
      t.equal(page.status, 200)
      out.push(page.body.items.map(e => e.target))
      cursor = page.body.nextCursor
    } while (cursor != null && out.length < 20)
    return out
  }
  // 16 rows: windows of 5, 5, 5 and 1
  for (const base of [`/v1/currencies/${s.code}/audit`, '/v1/audit']) {
    t.same(await pages(base, 'action=webhook.retry'), [[], [], ['webhook.retry-0'], []], `${base}: the windows without the match give empty pages, each going on`)
    // a filter most rows match fills its pages within their windows, as before
    t.same(await pages(base, 'actor=tester&action=account.update'), [
      ['account.update-0', 'account.update-1', 'account.update-2'], ['account.update-3', 'account.update-4', 'account.update-5'],
      ['account.update-6', 'account.update-7', 'account.update-8'], ['account.update-9', 'account.update-10', 'account.update-11'],
      ['account.update-0', 'account.update-1', 'account.update-2']], `${base}: a full page ends where it filled`)
  }
  const plain = await pages(`/v1/currencies/${s.code}/audit`, '')
  t.same(plain.map(p => p.length), [3, 3, 3, 3, 3, 1], 'without a filter the pages are full, as before')
})
