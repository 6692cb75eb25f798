import { Type, type Static } from 'typebox'
import { RESET_CODE_HOURS } from '../auth/reset-code.js'
import { AUDIT_ACTIONS, SCOPES } from '../domain/access.js'
import { NextCursor, Nullable, PageQuery, Timestamp, Uuid } from './common.js'
import { Name, Password, Username } from './ledger.js'

const Scope = Type.Enum([...SCOPES], {
  description: 'payments:write (pay from the business\'s account), redemptions:write (redeem to sterling), ' +
    'statements:read (statements and transfers), accounts:read (accounts and the participant), requests:write (payment requests)',
})

export const PasswordLoginSchema = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 200 }),
}, { additionalProperties: false, title: 'password login' })

export const ApiKeyLoginSchema = Type.Object({
  apiKey: Type.String({ minLength: 1, maxLength: 200, description: 'a key from POST /v1/api-keys (circ_...)' }),
}, { additionalProperties: false, title: 'API key' })

export const TokenRequestSchema = Type.Union([PasswordLoginSchema, ApiKeyLoginSchema])

export const PasswordChangeSchema = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: 200, description: 'the login\'s password now' }),
  newPassword: Password,
}, { additionalProperties: false })

/** What the routes that hand out a password reset code say of it. */
export const RESET_CODE_DESCRIPTION = 'Hand the code out only to the person whose login it is, once you know who is asking (in person, or ' +
  'read out to them): with the username and the code, anyone can set the login\'s password (POST /v1/auth/password/reset). ' +
  `It works once, for ${RESET_CODE_HOURS} hours, and replaces any earlier code of the login; the old password keeps working until the code is ` +
  'used, and then every token of the login from before stops working. If the login changes its password first (POST /v1/auth/password), ' +
  'the code stops working. If the staff login that made it is suspended before it is used, ' +
  'the code stops working too (and stays dead after a reinstatement). Shown only in this answer (Cache-Control: no-store).'
export const ResetCodeSchema = Type.Object({
  username: Type.String({ description: 'the login the code is for: hand it out with the code' }),
  code: Type.String({ description: 'one-time code, shown only here (four groups of four letters and digits); it replaces any earlier code of the login' }),
  expiresAt: Timestamp('when the code stops working, unless used before'),
})
export const PasswordResetSchema = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  code: Type.String({ minLength: 1, maxLength: 40, description: 'the code an issuer handed out, in either case, with or without its hyphens' }),
  newPassword: Password,
}, { additionalProperties: false })

export const StaffCreateSchema = Type.Object({
  name: Name('the person\'s name, for the audit trail'),
  username: Username, password: Password,
}, { additionalProperties: false })
export const StaffCreatedSchema = Type.Object({ id: Uuid('the login\'s user id') })

const StaffRole = Type.Enum(['issuer', 'researcher'], { description: 'issuer staff of the currency, or one of its researchers' })
export const StaffSchema = Type.Object({
  id: Uuid('the login\'s user id'),
  role: StaffRole,
  username: Type.String(),
  name: Type.String({ description: 'the person\'s name' }),
  createdAt: Timestamp('when the login was made'),
  suspended: Type.Boolean(),
  suspendedAt: Nullable(Timestamp('since when; null when not suspended')),
})
export const StaffPageSchema = Type.Object({ items: Type.Array(StaffSchema, { description: 'oldest first' }), nextCursor: NextCursor })
export const StaffListQuerySchema = Type.Object({ role: Type.Optional(StaffRole), ...PageQuery }, { additionalProperties: false })
export const StaffSuspensionSchema = Type.Object({
  userId: Uuid('the staff login'),
  suspended: Type.Boolean(),
  suspendedAt: Nullable(Timestamp('since when; null when not suspended')),
})

export const SuspensionCreateSchema = Type.Object({
  reason: Name('why, for the audit trail (e.g. "account closed", "reported lost phone")'),
}, { additionalProperties: false })
export const SuspensionSchema = Type.Object({
  participantId: Uuid('the participant whose login this is'),
  suspended: Type.Boolean(),
  suspendedAt: Nullable(Timestamp('since when; null when not suspended')),
})

export const ApiKeyCreateSchema = Type.Object({
  name: Name('what the key is for, e.g. "till 2" or "web shop"', 100),
  scopes: Type.Array(Scope, { minItems: 1, maxItems: SCOPES.length, description: 'what the key may do; nothing else' }),
}, { additionalProperties: false })

const ApiKeyFields = {
  id: Uuid('key id'),
  name: Type.String(),
  prefix: Type.String({ description: 'the first characters of the key, to tell keys apart' }),
  scopes: Type.Array(Scope),
  createdAt: Timestamp('created'),
  lastUsedAt: Nullable(Timestamp('last exchanged for a token or last seen on a request (to within a few seconds)')),
  revokedAt: Nullable(Timestamp('revoked; a revoked key gets no token and its tokens stop working')),
}
export const ApiKeySchema = Type.Object(ApiKeyFields)
export const ApiKeyCreatedSchema = Type.Object({
  ...ApiKeyFields,
  key: Type.String({ description: 'the key itself: shown this once, stored only as a hash. Exchange it at POST /v1/auth/token' }),
})
export const ApiKeyPageSchema = Type.Object({ items: Type.Array(ApiKeySchema), nextCursor: NextCursor })
export const ApiKeyListQuerySchema = Type.Object({ ...PageQuery }, { additionalProperties: false })

const AuditAction = Type.Enum([...AUDIT_ACTIONS])
const Outcome = Type.Enum(['success', 'failure'])

/** What a client of the audit routes must know about their pages (openapi.yaml's description of both). */
export const AUDIT_PAGE_DESCRIPTION = 'With a filter (action, actor, outcome, from, to) a page looks at no more than AUDIT_WINDOW (1,000) rows ' +
  'of the trail after its cursor, so it may be shorter than limit, even empty, while nextCursor goes on: follow nextCursor until it is null.'

export const AuditQuerySchema = Type.Object({
  action: Type.Optional(AuditAction),
  actor: Type.Optional(Type.String({ maxLength: 200, description: 'actor id (a user id, an API key id, oidc:<subject>)' })),
  outcome: Type.Optional(Outcome),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'events at or after this time' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'events before this time' })),
  ...PageQuery,
}, { additionalProperties: false })

export const AuditAllQuerySchema = Type.Object({
  ...AuditQuerySchema.properties,
  currency: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{1,9}$', description: 'only this currency' })),
}, { additionalProperties: false })

export const AuditEventSchema = Type.Object({
  id: Type.String({ description: 'position in the trail (increasing)' }),
  at: Timestamp('when'),
  actorId: Nullable(Type.String({ description: 'who: a user id, an API key id or oidc:<subject>; null for an unknown login' })),
  actorName: Nullable(Type.String({ description: 'the username (as typed, for a failed login) or apikey:<name>' })),
  role: Nullable(Type.String({ description: 'the role the actor acted in' })),
  action: AuditAction,
  target: Nullable(Type.String({ description: 'what was acted on: an account, participant, user, transfer, key or currency' })),
  currency: Nullable(Type.String()),
  outcome: Outcome,
  errorCode: Nullable(Type.String({ description: 'the problem code of a refused action' })),
  clientAddress: Nullable(Type.String()),
  requestId: Nullable(Type.String({ description: 'the request id (X-Request-Id), to find the request in the logs' })),
  detail: Type.Record(Type.String(), Type.Unknown(), {
    description: 'what else the action left to know (an account change: the values before it). A row for refused attempts past the caller\'s ' +
      'per-minute bound (AUDIT_REFUSALS_PER_MINUTE) stands for attempts of its action, by one login or API key (its actor), or, ' +
      'past as many such rows as the bound, by several; it carries unrecordedAttempts (how many), errorCodes, actors (login or key ' +
      'ids), targets and clientAddresses (how many of each; at most 20 of each kept, the rest counted in otherActors, otherTargets ' +
      'and otherClientAddresses) and from and to (the first and last attempt\'s time); its errorCode is the most frequent, its ' +
      'target set when every attempt had that one',
  }),
})
export const AuditPageSchema = Type.Object({ items: Type.Array(AuditEventSchema), nextCursor: NextCursor })

export type StaffCreate = Static<typeof StaffCreateSchema>
export type SuspensionCreate = Static<typeof SuspensionCreateSchema>
export type ApiKeyCreate = Static<typeof ApiKeyCreateSchema>
export type ApiKeyListQuery = Static<typeof ApiKeyListQuerySchema>
export type StaffListQuery = Static<typeof StaffListQuerySchema>
export type AuditAllQuery = Static<typeof AuditAllQuerySchema>

export const WhoAmISchema = Type.Object({
  role: Type.Enum(['platform_issuer', 'issuer', 'researcher', 'member', 'business']),
  username: Nullable(Type.String({ description: 'the login\'s name; null for an API key\'s token' })),
  currency: Nullable(Type.String({ description: 'the currency the login belongs to; null for the platform issuer, who acts in every currency' })),
  participantId: Nullable(Uuid('the member or business the login speaks for; null for staff')),
  accounts: Type.Array(Uuid('an account'), { description: 'the participant\'s accounts, oldest first; empty for staff' }),
  apiKey: Nullable(Type.Object({ id: Uuid('the API key'), scopes: Type.Array(Scope) }, { description: 'set when the token was exchanged for an API key' })),
}, { title: 'who am I' })
export type WhoAmI = Static<typeof WhoAmISchema>
