// Typed domain errors with stable codes. Each code maps to exactly one HTTP status, here and nowhere else; the
// problem-details plugin turns any DomainError into an RFC 9457 response.
export const ERROR_STATUS = {
  /** The HTTP request itself is not one the service can read: a URL that does not decode, no Host header, or another fault Node or Fastify found before any route ran. */
  BAD_REQUEST: 400,
  /** The body is not JSON, or is empty where JSON was announced. */
  MALFORMED_JSON: 400,
  /** A route that moves money or makes something was called without an Idempotency-Key header (1–255 characters, not white space alone). */
  IDEMPOTENCY_KEY_MISSING: 400,
  /** A path, query or header parameter has the wrong form (the problem's errors[] points at each). */
  INVALID_QUERY: 400,
  /** A page cursor this service did not issue, or one of another search; start again without it. */
  INVALID_CURSOR: 400,
  /** No token on a route that needs one, or a token that is malformed, expired, badly signed, of a revoked API key or of a suspended login. */
  UNAUTHENTICATED: 401,
  /** A wrong username or password, an unknown or revoked API key at the token exchange, or a wrong, spent or expired reset code (never which part was wrong). */
  INVALID_CREDENTIALS: 401,
  /** The caller is who it says, but its role may not do this here (another currency, another participant's account, a system account's limits). */
  FORBIDDEN: 403,
  /** An API key's token on a route its scopes do not cover. */
  INSUFFICIENT_SCOPE: 403,
  /** A login an issuer has suspended tried to log in. */
  LOGIN_SUSPENDED: 403,
  /** No such route, or a webhook or delivery that does not exist or is not the caller's. */
  NOT_FOUND: 404,
  /** No currency has this code. */
  CURRENCY_NOT_FOUND: 404,
  /** No account with this id in this currency that the caller may see. */
  ACCOUNT_NOT_FOUND: 404,
  /** No participant with this id in this currency that the caller may see. */
  PARTICIPANT_NOT_FOUND: 404,
  /** No transfer with this id in this currency that the caller may see. */
  TRANSFER_NOT_FOUND: 404,
  /** No API key with this id among the caller's. */
  API_KEY_NOT_FOUND: 404,
  /** No payment request with this id that the caller may see. */
  PAYMENT_REQUEST_NOT_FOUND: 404,
  /** No login with this id in the issuer's currency. */
  LOGIN_NOT_FOUND: 404,
  /** The path exists, but not with this method (the Allow header lists those it has). */
  METHOD_NOT_ALLOWED: 405,
  /** The request did not arrive in time (its headers or body came too slowly). */
  REQUEST_TIMEOUT: 408,
  /** Another request with the same Idempotency-Key is still being answered; retry after it. */
  IDEMPOTENCY_IN_FLIGHT: 409,
  /** A currency with this code exists already. */
  CURRENCY_EXISTS: 409,
  /** The username is taken (usernames are compared without case). */
  USERNAME_TAKEN: 409,
  /** Another business of this currency has this text code. */
  TEXT_CODE_TAKEN: 409,
  /** The payment request has already been paid. */
  REQUEST_PAID: 409,
  /** The payment request has expired. */
  REQUEST_EXPIRED: 409,
  /** The payee cancelled the payment request. */
  REQUEST_CANCELLED: 409,
  /** The payer declined the payment request. */
  REQUEST_DECLINED: 409,
  /** The standing order has finished: nothing is left to pay or to retry. */
  STANDING_ORDER_FINISHED: 409,
  /** A send of this webhook delivery is under way; its outcome will be in the delivery log. */
  DELIVERY_SENDING: 409,
  /** A later rotation replaced the webhook secret this Idempotency-Key's rotation made, so it cannot be answered again. */
  ROTATION_SUPERSEDED: 409,
  /** The currency's time zone cannot change once it has a transfer (its reports are cut in it). */
  TIME_ZONE_FIXED: 409,
  /** The participant has as many API keys as one may hold; revoke one first. */
  API_KEY_LIMIT: 409,
  /** An account still holding money, or owing it, cannot be closed; move its balance out first. */
  ACCOUNT_NOT_EMPTY: 409,
  /** The body is larger than the route accepts. */
  PAYLOAD_TOO_LARGE: 413,
  /** A path segment is longer than the service reads. */
  URI_TOO_LONG: 414,
  /** The body is not sent as JSON in UTF-8 (or, for the text gateway, as its form encoding). */
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** The body does not match the route's schema; errors[] points at every field at fault. */
  VALIDATION_FAILED: 422,
  /** A string holds a character the service refuses anywhere (NUL, a lone surrogate, a control character, a bidirectional override). */
  INVALID_TEXT: 422,
  /** An amount is not a positive decimal with at most the currency's decimals, or is out of range. */
  INVALID_AMOUNT: 422,
  /** A postcode is not a UK postcode such as "BS6 5AB". */
  INVALID_POSTCODE: 422,
  /** A movement from an account to itself. */
  SAME_ACCOUNT: 422,
  /** A movement between accounts of different currencies. */
  CURRENCY_MISMATCH: 422,
  /** The payer's balance would go below its floor. */
  INSUFFICIENT_FUNDS: 422,
  /** The payee's balance would go above its ceiling. */
  CEILING_EXCEEDED: 422,
  /** The movement would pay out more sterling than the reserve holds. */
  RESERVE_EXCEEDED: 422,
  /** An account of the movement is frozen. */
  ACCOUNT_FROZEN: 422,
  /** An account of the movement is closed. */
  ACCOUNT_CLOSED: 422,
  /** New limits would put the balance outside them, or have the floor above the ceiling. */
  INVALID_LIMITS: 422,
  /** The transfer has been reversed already. */
  ALREADY_REVERSED: 422,
  /** The transfer cannot be reversed itself: a fee (reverse its payment) or a reversal. */
  NOT_REVERSIBLE: 422,
  /** Only a business redeems to sterling or sells notes back. */
  NOT_REDEEMABLE: 422,
  /** A payee cannot pay or decline its own payment request, nor ask its own accounts for one. */
  OWN_REQUEST: 422,
  /** A password change whose current password is wrong (or changed while it was checked). */
  WRONG_PASSWORD: 422,
  /** A payment named a channel the caller may not name (text payments are posted by the text gateway only). */
  CHANNEL_RESERVED: 422,
  /** The Idempotency-Key was used before with another request body. */
  IDEMPOTENCY_KEY_REUSED: 422,
  /** A phone's verification code is wrong, expired, spent or not waiting. */
  VERIFICATION_FAILED: 422,
  /** Too many requests of this kind from this caller; retry after Retry-After seconds. */
  RATE_LIMITED: 429,
  /** The request's headers are larger than the service reads. */
  HEADERS_TOO_LARGE: 431,
  /** A fault of the service; logged with the request id, never detailed to the client. */
  INTERNAL: 500,
  /** The service or its database cannot answer now (load shed, no connection, a report that kept changing); retry after Retry-After seconds. */
  SERVICE_UNAVAILABLE: 503,
} as const

export type ErrorCode = keyof typeof ERROR_STATUS

export interface FieldError {
  /** JSON pointer into the request part that was wrong, e.g. "/amount" */
  pointer: string
  detail: string
}

export class DomainError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly errors?: FieldError[]

  constructor (code: ErrorCode, detail: string, errors?: FieldError[]) {
    super(detail)
    this.name = 'DomainError'
    this.code = code
    this.status = ERROR_STATUS[code]
    this.errors = errors
  }
}

export const isErrorCode = (s: string): s is ErrorCode => Object.hasOwn(ERROR_STATUS, s)

/** The most field problems one problem lists (errors[] and its detail); the detail counts the rest. */
export const MAX_LISTED = 50
