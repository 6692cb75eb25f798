import t from 'tap'
import { comboKey, K, publishedAccounts, type ParticipantRow, type QuasiIdentifiers } from '../../src/reports/anonymise.js'
import { areaOf, isLocal } from '../../src/domain/postcode.js'
import { openExport } from '../../src/reports/pseudonym.js'
import { buildTestApp, registerMember } from '../helper.js'
import { business, member, reportBook, type Party } from './fixture.js'
import { createResearcher } from './ledger.js'
import { parseCsv } from './recompute-exports.js'

// docs/disclosure.md, "Exports made at different times". A researcher downloads the accounts export, waits while
// five members who joined in October close their accounts (one of the five October members in Bath, four of
// Bristol's fifteen) and six new members join, and downloads it again. The transfers files link the two files' pseudonyms (the same payments at the same
// microseconds). With both files, an outsider who knows where each participant lives, whether it is a member or a
// business, when it joined, and whether it had closed at each download must still find at least K accounts that
// both files fit. Each file generalised on its own (as the export did before it kept a history) singles the
// Bath member out: the first file gave its area among Bath's five, the second its closing among the five who
// closed, area withheld. That is the control.

const POSTCODES = ['BS1 1AA', 'BS3 1AA', 'BS6 5AB', 'BA1 1AA']
const MONTHS = ['2025-10', '2025-11', '2025-12']
const LOCAL = ['BS', 'BA']

t.test('two accounts exports made apart are k-anonymous together', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, 'TWO', LOCAL, { fees: {}, redemptionFee: '0' })
  const pool = ctx.app.pool
  // five members of every district and month, and ten shops
  const members: Array<Party & { postcode: string, month: string }> = []
  for (const month of MONTHS) {
    for (const postcode of POSTCODES) {
      for (let i = 0; i < 5; i++) members.push({ ...await member(ctx, 'TWO', postcode, `${month}-03T10:00:00Z`), postcode, month })
    }
  }
  const shops: Party[] = []
  for (let i = 0; i < 10; i++) shops.push(await business(ctx, 'TWO', 'food', 'BS1 4DJ', '2025-10-02T10:00:00Z'))
  for (const [i, m] of members.entries()) {
    await book.ledger.issue(`2026-01-05T10:${String(i % 60).padStart(2, '0')}:00Z`, m.accountId, '10')
    await book.ledger.pay(`2026-01-10T11:${String(i % 60).padStart(2, '0')}:00Z`, m.accountId, shops[i % 10].accountId, '2')
  }
  await createResearcher(pool, book.currencyId, 'res-two', 'researcher-password')
  const token = await ctx.token('res-two', 'researcher-password')
  const researcher = (await pool.query<{ id: string }>(`SELECT id FROM app_user WHERE username = 'res-two'`)).rows[0].id
  const truth = async () => (await pool.query<ParticipantRow>(`
    SELECT a.id::text AS id, to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS start, a.status, p.kind, p.district
      FROM account a JOIN participant p ON p.id = a.participant_id WHERE a.currency_id = $1`, [book.currencyId])).rows
  const download = async () => {
    const tx = await ctx.call('GET', '/v1/currencies/TWO/exports/transfers', { token })
    t.equal(tx.status, 200)
    const id = String(tx.headers['x-export-id'])
    const ac = await ctx.call('GET', `/v1/currencies/TWO/exports/accounts?export=${id}`, { token })
    t.equal(ac.status, 200)
    // the test reads each row's account from the export's own pseudonyms: the researcher's linkage at its best
    const session = await openExport(pool, book.currencyId, researcher, id)
    const rows = new Map(parseCsv(ac.text).map(r => [r.id, r]))
    return { transfers: parseCsv(tx.text), rows, of: (accountId: string) => rows.get(session.pseudonym(accountId)) }
  }

  const before = await truth()
  const first = await download()

  // five October members close: the first of Bath's five, and four of Bristol's (an account closes only when empty)
  const closing = [members[15], members[0], members[1], members[5], members[10]]
  t.same(closing.map(m => `${m.postcode.slice(0, 2)} ${m.month}`), ['BA 2025-10', 'BS 2025-10', 'BS 2025-10', 'BS 2025-10', 'BS 2025-10'])
  for (const [i, m] of closing.entries()) {
    await book.ledger.pay(`2026-02-0${i + 1}T12:00:00Z`, m.accountId, shops[0].accountId, '8')
    t.equal((await ctx.call('PATCH', `/v1/accounts/${m.accountId}`, { token: ctx.issuerToken, body: { status: 'closed' } })).status, 200)
  }
  for (let i = 0; i < 6; i++) {
    const m = await registerMember(ctx, 'TWO', 'BS3 1AA')
    await book.ledger.issue(`2026-02-10T10:0${i}:00Z`, m.accountId, '5')
  }
  const after = await truth()
  const second = await download()

  // the linkage the attack rests on: the same payment in both files, its payer and payee under two pseudonyms
  const key = (r: Record<string, string>) => `${r.timeset}|${r.weight}|${r.transfer_subtype}`
  const later = new Map(second.transfers.map(r => [key(r), r]))
  const linked = new Map<string, string>()
  for (const r of first.transfers) {
    const s = later.get(key(r))
    if (s != null) { linked.set(r.source, s.source); linked.set(r.target, s.target) }
  }
  const participants1 = [...first.rows.values()].filter(r => r.held_roles !== 'ADMIN')
  t.equal(participants1.filter(r => linked.has(r.id)).length, participants1.length, 'the transfers link every participant of the first file to the second')

  const ok = (pub: string, v: string) => pub === '' || pub === v
  const role = (kind: string | null) => kind === 'business' ? 'VENDOR' : 'BENEFICIARY'
  const fitsRow = (r: Record<string, string> | undefined, p: ParticipantRow) => r != null && ok(r.area_name, areaOf(p.district!)) &&
    ok(r.area_type, isLocal(p.district!, LOCAL) ? 'local' : 'non-local') && ok(r.held_roles, role(p.kind)) && ok(r.start, p.start) &&
    ok(r.status, p.status === 'closed' ? 'closed' : 'open')
  const was = new Map(before.map(p => [p.id, p]))
  // for every participant, the accounts whose rows in both files (or only the second, for one that joined between)
  // fit what an outsider knows of it at each download
  const fewest = (fits1: (a: string, p: ParticipantRow) => boolean, fits2: (a: string, p: ParticipantRow) => boolean) => {
    let least = Infinity; let closedLeast = Infinity
    for (const target of after) {
      const old = was.get(target.id)
      const n = after.filter(a => (was.has(a.id) === (old != null)) && (old == null || fits1(a.id, old)) && fits2(a.id, target)).length
      least = Math.min(least, n)
      if (target.status === 'closed') closedLeast = Math.min(closedLeast, n)
    }
    return { least, closedLeast }
  }
  const real = fewest((a, p) => fitsRow(first.of(a), p), (a, p) => fitsRow(second.of(a), p))
  t.ok(real.least >= K, `with both files, everyone fits at least ${K} accounts (fewest: ${real.least}; a member who closed between: ${real.closedLeast})`)
  const sizes = new Map<string, number>()
  for (const a of after) {
    const seq = [first.of(a.id), second.of(a.id)].map(r => r == null ? '-' : comboKey({ start: r.start, area: r.area_name, areaType: r.area_type, role: r.held_roles, status: r.status })).join(' then ')
    sizes.set(seq, (sizes.get(seq) ?? 0) + 1)
  }
  t.ok(Math.min(...sizes.values()) >= K, `every sequence of what the two files say of an account is shared by at least ${K} (${sizes.size} sequences, fewest ${Math.min(...sizes.values())})`)

  // the control: each file generalised on its own
  const alone = (rows: ParticipantRow[]) => publishedAccounts(rows, LOCAL)
  const asRow = (q: QuasiIdentifiers | undefined) => q == null ? undefined : { start: q.start, area_name: q.area, area_type: q.areaType, held_roles: q.role === '' ? '' : role(q.role), status: q.status }
  const c1 = alone(before); const c2 = alone(after)
  const control = fewest((a, p) => fitsRow(asRow(c1.get(a)), p), (a, p) => fitsRow(asRow(c2.get(a)), p))
  t.ok(control.closedLeast < K, `each file generalised on its own narrows a member who closed between to ${control.closedLeast} account(s)`)
})
