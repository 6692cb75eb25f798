// Typed domain errors with stable codes. Each code maps to exactly one HTTP status, here and nowhere else; the
// problem-details plugin turns any DomainError into an RFC 9457 response.
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  MALFORMED_JSON: 400,
  IDEMPOTENCY_KEY_MISSING: 400,
  INVALID_QUERY: 400,
  INVALID_CURSOR: 400,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  FORBIDDEN: 403,
  INSUFFICIENT_SCOPE: 403,
  LOGIN_SUSPENDED: 403,
  NOT_FOUND: 404,
  CURRENCY_NOT_FOUND: 404,
  ACCOUNT_NOT_FOUND: 404,
  PARTICIPANT_NOT_FOUND: 404,
  TRANSFER_NOT_FOUND: 404,
  API_KEY_NOT_FOUND: 404,
  PAYMENT_REQUEST_NOT_FOUND: 404,
  LOGIN_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  NOT_ACCEPTABLE: 406,
  IDEMPOTENCY_IN_FLIGHT: 409,
  CURRENCY_EXISTS: 409,
  USERNAME_TAKEN: 409,
  TEXT_CODE_TAKEN: 409,
  REQUEST_PAID: 409,
  REQUEST_EXPIRED: 409,
  REQUEST_CANCELLED: 409,
  REQUEST_DECLINED: 409,
  STANDING_ORDER_FINISHED: 409,
  DELIVERY_SENDING: 409,
  ROTATION_SUPERSEDED: 409,
  TIME_ZONE_FIXED: 409,
  API_KEY_LIMIT: 409,
  ACCOUNT_NOT_EMPTY: 409,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  VALIDATION_FAILED: 422,
  INVALID_TEXT: 422,
  INVALID_AMOUNT: 422,
  INVALID_POSTCODE: 422,
  SAME_ACCOUNT: 422,
  CURRENCY_MISMATCH: 422,
  INSUFFICIENT_FUNDS: 422,
  CEILING_EXCEEDED: 422,
  RESERVE_EXCEEDED: 422,
  ACCOUNT_FROZEN: 422,
  ACCOUNT_CLOSED: 422,
  INVALID_LIMITS: 422,
  ALREADY_REVERSED: 422,
  NOT_REVERSIBLE: 422,
  NOT_REDEEMABLE: 422,
  OWN_REQUEST: 422,
  WRONG_PASSWORD: 422,
  CHANNEL_RESERVED: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  VERIFICATION_FAILED: 422,
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
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
