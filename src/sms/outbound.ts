import type pg from 'pg'

// The outbound port of pay by text (docs/text-payments.md): everything the service texts (verification codes,
// replies to the sender, receipts to the business paid) goes through a TextSender. The implementation the service
// uses writes each text to the sms_outbox table in the caller's own transaction, so a text is queued exactly when
// what it reports is committed (a payment rolled back sends no "Paid"), and a retried webhook that changes
// nothing queues nothing. A gateway adapter (./gateway.ts) delivers queued rows when one is configured.

export type TextPurpose = 'verification' | 'reply' | 'receipt'

export interface OutgoingText {
  /** the currency the text is about; null for a reply to a number no participant has */
  currencyId: string | null
  participantId: string | null
  /** E.164 */
  to: string
  purpose: TextPurpose
  body: string
  /** the inbound MessageSid this text answers */
  inReplyTo?: string | null
}

/** A connection (usually a client inside the caller's transaction) the sender writes with. */
export type Queryable = Pick<pg.PoolClient, 'query'>

export interface TextSender {
  send: (db: Queryable, text: OutgoingText) => Promise<void>
}

/** The outbox implementation: one queued row per text, written on the caller's connection. */
export const outboxSender: TextSender = {
  async send (db, t) {
    await db.query(
      `INSERT INTO sms_outbox (currency_id, participant_id, to_phone, purpose, body, in_reply_to)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [t.currencyId, t.participantId, t.to, t.purpose, t.body, t.inReplyTo ?? null])
  },
}

/** Whose queued texts a holdQueued call takes: the participant's own, or everyone else's. */
export type OutboxOwner = { participant: string } | { anyoneBut: string }

/**
 * Marks texts still queued to the number(s) failed with the reason, so they are never sent (the relay sends queued
 * rows only), and returns how many. For a number that changes hands, or that its holder leaves: what was queued
 * for it would go to whoever has the phone now. purposes null takes texts of every purpose. Rows a relay round holds
 * are being sent as we speak and are skipped rather than waited for (a round holds its rows while it sends them
 * all); the relay checks the number's holder before each attempt (./gateway.ts).
 */
export async function holdQueued (db: Queryable, owner: OutboxOwner, phones: string[], purposes: TextPurpose[] | null, reason: string): Promise<number> {
  const [cond, participant] = 'participant' in owner ? ['participant_id = $1', owner.participant] : ['participant_id <> $1', owner.anyoneBut]
  const r = await db.query(
    `UPDATE sms_outbox SET status = 'failed', last_error = $4
      WHERE id IN (SELECT id FROM sms_outbox WHERE ${cond} AND to_phone = ANY($2) AND ($3::text[] IS NULL OR purpose = ANY($3))
                     AND status = 'queued' FOR UPDATE SKIP LOCKED)`,
    [participant, phones, purposes, reason])
  return r.rowCount ?? 0
}
