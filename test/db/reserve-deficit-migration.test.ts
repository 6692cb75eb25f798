import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.js'
import { Money } from '../../src/domain/money.js'
import { issuance, redemption } from '../../src/domain/movements.js'
import { postMovement, postMovements } from '../../src/ledger/post.js'
import { createTestDb } from '../../support/postgres.js'

// The reserve never falls below zero (migration 20261229000000_reserve_never_below_zero). A database made before
// it may hold a currency whose reserve is already below zero (money spent on credit was redeemed): its issuance
// account keeps the deficit as its ceiling, and nothing more is paid out until issuances bring the reserve back to
// zero; from then on its ceiling is zero, as every other currency's.
const MIGRATION = '20261229000000_reserve_never_below_zero'

t.test('a currency whose reserve is already below zero pays nothing out until the reserve is back, then holds it at zero', async (t) => {
  const db = await createTestDb({ migrate: false })
  t.teardown(db.drop)
  const before = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-migrations-'))
  t.teardown(() => { fs.rmSync(before, { recursive: true, force: true }) })
  for (const name of fs.readdirSync(MIGRATIONS_DIR).filter(n => n < MIGRATION)) fs.cpSync(path.join(MIGRATIONS_DIR, name), path.join(before, name), { recursive: true })
  await migrate(db.url, before)

  const pool = new pg.Pool({ connectionString: db.url, max: 2 })
  t.teardown(async () => { await pool.end() })
  const one = async (sql: string, values: unknown[] = []) => (await pool.query<{ id: string }>(sql, values)).rows[0].id
  const cur = await one(`INSERT INTO currency (code, name, backing, decimals) VALUES ('OLD', 'Old Pound', 'GBP', 2) RETURNING id`)
  // the reserve is 50.00 below zero: the issuance account holds +50.00; a member spent 150.00 on credit
  const sys = async (kind: string, floor: string | null, balance: string) =>
    await one(`INSERT INTO account (currency_id, system_kind, floor, balance) VALUES ($1, $2, $3, $4) RETURNING id`, [cur, kind, floor, balance])
  const system = { issuance: await sys('issuance', null, '50'), fees: await sys('fees', '0', '0'), paper: await sys('paper', '0', '0') }
  const person = async (kind: string, floor: string, balance: string) => {
    const p = await one(`INSERT INTO participant (currency_id, kind, name, postcode, district, sector, independent)
      VALUES ($1, $2, 'P', 'BS1 1AA', 'BS1', $3, $4) RETURNING id`, [cur, kind, kind === 'business' ? 'food' : null, kind === 'business' ? true : null])
    return await one('INSERT INTO account (currency_id, participant_id, floor, balance) VALUES ($1, $2, $3, $4) RETURNING id', [cur, p, floor, balance])
  }
  const member = await person('member', '-200', '-150')
  const business = await person('business', '0', '100')

  await migrate(db.url)
  const ceiling = async () => (await pool.query<{ ceiling: string }>('SELECT ceiling::text FROM account WHERE id = $1', [system.issuance])).rows[0].ceiling
  t.equal(Number(await ceiling()), 50, 'the deficit is the ceiling')

  const c = { id: cur, decimals: 2, fees: {} as never, redemptionFee: new Money(0), system }
  const who = (k: string) => ({ scope: 'test', idempotencyKey: k, requestHash: k, createdBy: 'test', owner: null })
  const issue = async (amount: string, k: string) =>
    await postMovement(pool, cur, { ...who(k), ...issuance(c, { to: member, amount: new Money(amount), sterlingReference: k }) })
  const redeem = async (amount: string, k: string) =>
    (await postMovements(pool, cur, [{ ...who(k), ...redemption(c, { from: business, amount: new Money(amount), sterlingReference: k }) }])).results[0]

  t.match(await redeem('0.01', 'r0'), { ok: false, error: { code: 'RESERVE_EXCEEDED' } }, 'the deficit does not grow')
  await issue('10.00', 'i1')
  t.match(await redeem('10.00', 'r1'), { ok: false, error: { code: 'RESERVE_EXCEEDED' } },
    'sterling paid in while the reserve is below zero does not go out again: the reserve is still 40.00 short')
  await issue('60.00', 'i2')
  t.equal(Number(await ceiling()), 0, 'the reserve back above zero, the ceiling is zero')
  t.match(await redeem('20.00', 'r2'), { ok: true }, 'what the reserve holds is paid out')
  t.match(await redeem('0.01', 'r3'), { ok: false, error: { code: 'RESERVE_EXCEEDED' } }, 'and not a penny below zero again')
})
