import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from 'typebox'
import { parseForm, readableForm, type FormFields } from '../domain/sms.js'
import { IdParams, paged, problems } from '../schemas/common.js'
import { ParticipantSchema } from '../schemas/ledger.js'
import {
  InboundHeadersSchema, InboundSchema, OutboxPageSchema, OutboxQuerySchema, ParticipantPatchSchema, PhoneBodySchema,
  TextPinBodySchema, TextSettingsSchema, VerificationBodySchema,
} from '../schemas/sms.js'
import { requestMeta } from './request-meta.js'

// Pay by text (docs/text-payments.md): the gateway's webhook, the outbox, and each participant's phone, text PIN
// and (a business's) text code.

/** What the gateway is answered: TwiML with nothing to send (every text goes out through the outbound port). */
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { sms, participants } = app.services

  // The webhook in a context of its own: the only route that takes a form body (the gateway's shape), and only it.
  await app.register(async (inbound) => {
    inbound.removeAllContentTypeParsers()
    inbound.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16_384 },
      (_request, body, done) => { done(null, parseForm(body as string)) })

    inbound.post('/v1/sms/inbound', {
      config: { public: true },
      // the signature is checked on the body as sent, before anything else looks at it: unsigned is 403, whatever it holds
      preValidation: async (request) => {
        const proto = request.protocol
        const fields = (request.body ?? {}) as FormFields
        sms.authenticate(fields, request.headers['x-twilio-signature'] as string | undefined, `${proto}://${request.host}${request.url}`)
        // then read as text the service can hold: a member's odd character is answered like any text, not a 422
        request.body = readableForm(fields)
      },
      schema: {
        tags: ['text payments'],
        summary: 'The SMS gateway\'s webhook for incoming texts (signed with X-Twilio-Signature; form-encoded)',
        description: 'Texts "PAY <code> <amount> <PIN>", "BAL <PIN>" and "HELP" (any case, any spacing). The MessageSid is the ' +
          'idempotency key: a retried webhook pays once and queues no second reply. Characters the API refuses elsewhere (control ' +
          'characters, bidirectional overrides) are read as spaces once the signature is checked, so any text is answered. Replies go out through the outbox ' +
          '(GET /v1/sms/outbox), so the answer to the gateway is empty TwiML. 404 when SMS_AUTH_TOKEN is not configured.',
        headers: InboundHeadersSchema,
        body: InboundSchema,
        consumes: ['application/x-www-form-urlencoded'],
        response: {
          200: { description: 'empty TwiML: nothing for the gateway to send itself', content: { 'text/xml': { schema: Type.String() } } },
          ...problems(400, 403, 404, 413, 415),
        },
      },
    }, async (request, reply) => {
      const b = request.body as Static<typeof InboundSchema>
      const out = await sms.inbound({ From: b.From, Body: b.Body, MessageSid: b.MessageSid })
      request.log.info({ messageSid: b.MessageSid, outcome: out.outcome, replayed: out.replayed }, 'text handled')
      return reply.type('text/xml; charset=utf-8').send(EMPTY_TWIML)
    })
  })

  app.get('/v1/sms/outbox', {
    schema: {
      tags: ['text payments'], summary: 'Texts queued and sent: verification codes (hidden), replies and receipts (issuer)',
      querystring: OutboxQuerySchema, response: { 200: OutboxPageSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await sms.outbox(request.principal, paged(request.query)))

  app.get('/v1/participants/:id/phone', {
    schema: {
      tags: ['text payments'], summary: 'A participant\'s text payment settings: phone, pending number, PIN set, locked (the participant or an issuer)',
      params: IdParams, response: { 200: TextSettingsSchema, ...problems(400, 401, 403, 404) },
    },
  }, async (request) => await sms.settings(request.principal, request.params.id))

  app.put('/v1/participants/:id/phone', {
    config: { audit: { action: 'text.phone_register', issuersOnly: true } },
    schema: {
      tags: ['text payments'],
      summary: 'Register a phone for text payments: a 6-digit code is texted to it (the participant or an issuer)',
      description: 'The number counts once its code comes back (POST .../phone/verification). One code a minute; it expires in 10 minutes.',
      params: IdParams, body: PhoneBodySchema, response: { 200: TextSettingsSchema, ...problems(400, 401, 403, 404, 413, 415, 429) },
    },
  }, async (request) => await sms.registerPhone(request.principal, request.params.id, request.body.phone, requestMeta(request)))

  app.delete('/v1/participants/:id/phone', {
    config: { audit: { action: 'text.phone_remove', issuersOnly: true } },
    schema: {
      tags: ['text payments'],
      summary: 'Take the phone off: texts from it stop paying (a lost phone); the PIN is kept (the participant or an issuer)',
      description: 'A code waiting for a new number is spent with it. Removing when there is no phone answers the settings as they are.',
      params: IdParams, response: { 200: TextSettingsSchema, ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request) => await sms.removePhone(request.principal, request.params.id, requestMeta(request)))

  app.post('/v1/participants/:id/phone/verification', {
    config: { audit: { action: 'text.phone_verify', issuersOnly: true } },
    schema: {
      tags: ['text payments'],
      summary: 'Confirm the phone with the code texted to it (the participant or an issuer)',
      description: 'A wrong code is counted: after 5 the code is spent. A number confirmed here stops working for anyone who had it before.',
      params: IdParams, body: VerificationBodySchema, response: { 200: TextSettingsSchema, ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request) => await sms.verifyPhone(request.principal, request.params.id, request.body.code, requestMeta(request)))

  app.put('/v1/participants/:id/text-pin', {
    config: { audit: { action: 'text.pin_set', issuersOnly: true } },
    schema: {
      tags: ['text payments'],
      summary: 'Set the text PIN (4-8 digits); also lifts the lock after 3 wrong PINs (the participant or an issuer)',
      params: IdParams, body: TextPinBodySchema, response: { 200: TextSettingsSchema, ...problems(400, 401, 403, 404, 413, 415) },
    },
  }, async (request) => await sms.setPin(request.principal, request.params.id, request.body.pin, requestMeta(request)))

  app.patch('/v1/participants/:id', {
    config: { audit: { action: 'text.code_set', issuersOnly: true } },
    schema: {
      tags: ['participants'],
      summary: 'Change a business\'s text code (the business or an issuer); null removes it',
      params: IdParams, body: ParticipantPatchSchema, response: { 200: ParticipantSchema, ...problems(400, 401, 403, 404, 409, 413, 415) },
    },
  }, async (request) => {
    await sms.setTextCode(request.principal, request.params.id, request.body.textCode, requestMeta(request))
    return await participants.get(request.principal, request.params.id)
  })
}
export default routes
