import { randomUUID } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { holdQueued } from '../../src/sms/outbound.js'
import { smsApp } from './fixtures.js'

// holdQueued(): the one way queued texts to a number are kept from being sent (a phone removed, a number confirmed
// by someone else, a participant moving to a new number; src/services/sms.service.ts).

t.test('holdQueued fails the queued texts of the participant (or of everyone else) to the numbers, by purpose, skipping rows a relay holds', async (t) => {
  const { ctx, db } = await smsApp(t)
  const [A, B] = [randomUUID(), randomUUID()]
  const [P1, P2] = ['+447911000001', '+447911000002']
  const add = async (participant: string, to: string, purpose: string, status = 'queued') =>
    (await db.query<{ id: string }>(`INSERT INTO sms_outbox (participant_id, to_phone, purpose, body, status) VALUES ($1, $2, $3, 'x', $4) RETURNING id`,
      [participant, to, purpose, status])).rows[0].id
  const rows = {
    aReply: await add(A, P1, 'reply'), aReceipt: await add(A, P1, 'receipt'), aCode: await add(A, P1, 'verification'),
    bReply: await add(B, P1, 'reply'), aOther: await add(A, P2, 'reply'), aSent: await add(A, P1, 'reply', 'sent'),
  }
  const state = async () => Object.fromEntries((await db.query<{ id: string, status: string, last_error: string | null }>(
    'SELECT id, status, last_error FROM sms_outbox')).rows.map(r => [Object.entries(rows).find(([, id]) => id === r.id)![0], [r.status, r.last_error]]))

  t.equal(await holdQueued(db, { anyoneBut: A }, [P1], ['reply', 'receipt'], 'others'), 1, 'anyone but A: B\'s reply')
  // a relay round holds A's reply to P1 (its transaction has the row)
  const relay = new pg.Client({ connectionString: ctx.db.url })
  await relay.connect()
  t.teardown(async () => { await relay.end() })
  await relay.query('BEGIN')
  await relay.query('SELECT 1 FROM sms_outbox WHERE id = $1 FOR UPDATE', [rows.aReply])
  t.equal(await holdQueued(db, { participant: A }, [P1], ['reply', 'receipt'], 'mine'), 1, 'A\'s receipt; the held reply is skipped, not waited for')
  t.equal(await holdQueued(db, { participant: A }, [P1, P2], null, 'all'), 2, 'every purpose, both numbers: the code and the reply to P2')
  await relay.query('COMMIT')
  t.same(await state(), {
    aReply: ['queued', null], aReceipt: ['failed', 'mine'], aCode: ['failed', 'all'], bReply: ['failed', 'others'], aOther: ['failed', 'all'], aSent: ['sent', null],
  }, 'sent rows and the row the relay held are untouched')
  t.equal(await holdQueued(db, { participant: A }, [], null, 'none'), 0, 'no numbers: nothing')
})
