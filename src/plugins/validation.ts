import { Ajv, type ErrorObject, type Options } from 'ajv'
import addFormatsModule from 'ajv-formats'
import fp from 'fastify-plugin'
import { DomainError, MAX_LISTED, type FieldError } from '../domain/errors.js'
import { TEXT_KEYWORD, textProblem, type TextKind } from '../domain/text.js'
import { BLANK_KEY_DETAIL, IDEMPOTENCY_KEY_PATTERN } from '../schemas/common.js'

// Fastify's default Ajv coerces types and strips unknown properties. For request bodies that is wrong for a
// ledger: a JSON number amount would become a string, and a misspelt field would vanish silently. Bodies are
// validated strictly (no coercion, unknown fields refused); query strings and path params coerce, since their
// values are always strings on the wire.
//
// Every string a route's schema describes, in every part of the request, is also held to the text rule of
// src/domain/text.ts: hardenText() below adds the `x-text` keyword to each string schema (and a `propertyNames`
// rule to each object whose keys the client chooses) when the route is compiled. A route added later gets it by
// doing nothing; a field that may hold several lines says so with `x-text: multiline` (Text() in
// src/schemas/common.ts). The route schemas themselves are not changed, so openapi.yaml states the rule once, in
// its description, not on every field.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
const base: Options = { useDefaults: true, removeAdditional: false, allErrors: true, strict: false }

function withTextRule (ajv: Ajv): Ajv {
  ajv.addKeyword({
    keyword: TEXT_KEYWORD,
    type: 'string',
    schemaType: 'string',
    errors: true,
    validate: function check (kind: TextKind, data: string): boolean {
      const why = textProblem(data, kind)
      if (why == null) return true
      ;(check as unknown as { errors: Array<Partial<ErrorObject>> }).errors = [{ keyword: TEXT_KEYWORD, message: why, params: { kind } }]
      return false
    },
  })
  return ajv
}

// Ids: one spelling each. The uuid format takes either case, and PostgreSQL reads either, but the services compare
// ids as strings (is this a system account? is the payee the payer?): an id sent in capitals passed those checks
// while the database found the account, so a member could pay into the issuance account and break the reserve's
// reconciliation. Every uuid a request carries is therefore put in small letters as it is validated (in place,
// before any handler or the idempotency hash sees it), and only the plain hyphenated form is a uuid
// (ajv-formats also took "urn:uuid:..."; PostgreSQL does not).
const LOWER_CASE = 'x-lower-case'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function withIdRule (ajv: Ajv): Ajv {
  ajv.addFormat('uuid', UUID)
  ajv.addKeyword({
    keyword: LOWER_CASE,
    type: 'string',
    schemaType: 'boolean',
    modifying: true,
    validate: (_on: boolean, data: string, _schema: unknown, cxt?: { parentData: Record<string | number, unknown>, parentDataProperty: string | number }) => {
      if (cxt?.parentData != null) cxt.parentData[cxt.parentDataProperty] = data.toLowerCase()
      return true
    },
  })
  return ajv
}

const strict = withIdRule(withTextRule(addFormats(new Ajv({ ...base, coerceTypes: false }))))
const lenient = withIdRule(withTextRule(addFormats(new Ajv({ ...base, coerceTypes: 'array' }))))

type Schema = Record<string, unknown>
const MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'])
const ONE = new Set(['items', 'additionalProperties', 'propertyNames', 'contains', 'not', 'if', 'then', 'else',
  'unevaluatedProperties', 'unevaluatedItems', 'additionalItems'])
const MANY = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems'])

const isObject = (v: unknown): v is Schema => v != null && typeof v === 'object' && !Array.isArray(v)
const hasType = (s: Schema, t: string) => s.type === t || (Array.isArray(s.type) && s.type.includes(t))

/**
 * A copy of a request schema with the text rule on every string and on the keys of every object that takes keys
 * of the client's choosing, and every uuid put in small letters. Strings that already say which rule they follow
 * (`x-text`) keep it.
 */
export function hardenText (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(hardenText)
  if (!isObject(schema)) return schema
  const out: Schema = {}
  for (const [k, v] of Object.entries(schema)) {
    if (MAPS.has(k) && isObject(v)) out[k] = Object.fromEntries(Object.entries(v).map(([n, s]) => [n, hardenText(s)]))
    else if (ONE.has(k) && isObject(v)) out[k] = hardenText(v)
    else if (ONE.has(k) && Array.isArray(v)) out[k] = v.map(hardenText) // draft-04 tuple items
    else if (MANY.has(k) && Array.isArray(v)) out[k] = v.map(hardenText)
    else out[k] = v // enum, const, default, examples, descriptions: data, not schemas
  }
  if (hasType(out, 'string') && out[TEXT_KEYWORD] == null) out[TEXT_KEYWORD] = 'line'
  if (hasType(out, 'string') && out.format === 'uuid') out[LOWER_CASE] = true
  const openKeys = out.patternProperties != null || (out.additionalProperties !== false && out.additionalProperties !== undefined)
  if (hasType(out, 'object') && openKeys && out.propertyNames == null) out.propertyNames = { type: 'string', [TEXT_KEYWORD]: 'line' }
  return out
}

/** One validation failure, named by a JSON pointer into the part of the request it is about. */
export interface FieldProblem extends FieldError { keyword: string }

const escapePointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1')

/**
 * Ajv's errors as field problems. A bad object key is reported at the key's own pointer ("/metadata/k"), with the
 * reason its name was refused.
 */
export function fieldProblems (errors: Array<Partial<ErrorObject>>): FieldProblem[] {
  const out: FieldProblem[] = []
  let inner: Array<Partial<ErrorObject>> = []
  for (const v of errors) {
    const path = v.instancePath ?? ''
    if (v.schemaPath?.includes('/propertyNames/') === true) { inner.push(v); continue }
    if (v.keyword === 'propertyNames') {
      const name = String((v.params as { propertyName?: string } | undefined)?.propertyName ?? '')
      const reasons = inner.filter(e => (e as { propertyName?: string }).propertyName == null || (e as { propertyName?: string }).propertyName === name)
      const textOnly = reasons.length > 0 && reasons.every(e => e.keyword === TEXT_KEYWORD)
      out.push({
        pointer: `${path}/${escapePointer(name)}`,
        detail: `is not an acceptable key: ${reasons.map(e => e.keyword === 'not' ? 'the service writes this key itself' : e.message).join('; ') || 'its name is invalid'}`,
        keyword: textOnly ? TEXT_KEYWORD : 'propertyNames',
      })
      inner = []
      continue
    }
    const missing = v.keyword === 'required' ? `/${escapePointer(String((v.params as { missingProperty?: string }).missingProperty))}` : ''
    const extra = v.keyword === 'additionalProperties' ? `/${escapePointer(String((v.params as { additionalProperty?: string }).additionalProperty))}` : ''
    const pointer = `${path}${missing}${extra}` || '/'
    const detail = v.keyword === 'additionalProperties' ? 'is not a known field' : v.keyword === 'required' ? 'is required'
      : v.keyword === 'pattern' && (v.params as { pattern?: string } | undefined)?.pattern === IDEMPOTENCY_KEY_PATTERN ? BLANK_KEY_DETAIL
        : (v.message ?? 'is invalid')
    out.push({ pointer, detail, keyword: v.keyword ?? 'invalid' })
  }
  return out
}

export type RequestPart = 'body' | 'querystring' | 'params' | 'headers'

/**
 * The problem for a request part that failed its schema: text the service will not store is 422 INVALID_TEXT
 * wherever it is; a body otherwise 422 (INVALID_AMOUNT when only amounts are wrong), a bad header 400, a bad query
 * or path 400 INVALID_QUERY.
 */
export function validationProblem (part: string, errors: Array<Partial<ErrorObject>>, where = 'request body'): DomainError {
  const problems = fieldProblems(errors)
  // every field at once, but not without end: a body of thousands of unknown keys is answered with the first ones
  const listed = problems.slice(0, MAX_LISTED)
  const fields: FieldError[] = listed.map(({ pointer, detail }) => ({ pointer, detail }))
  const more = problems.length - listed.length
  const summary = listed.map(e => `${e.pointer} ${e.detail}`).join('; ') + (more > 0 ? `; and ${more} more` : '')
  const text = problems.filter(e => e.keyword === TEXT_KEYWORD)
  if (part === 'body') {
    if (text.length === problems.length) return new DomainError('INVALID_TEXT', `${where}: ${summary}`, fields)
    // An amount that is not a decimal string gets the same code as any other bad amount.
    const amountOnly = problems.every(e => /(^|\/)(amount|[a-zA-Z]*Amount)$/.test(e.pointer))
    return new DomainError(amountOnly ? 'INVALID_AMOUNT' : 'VALIDATION_FAILED', `${where}: ${summary}`, fields)
  }
  const label = part === 'headers' ? 'request headers' : part === 'params' ? 'path' : 'query'
  if (text.length > 0) return new DomainError('INVALID_TEXT', `${label}: ${summary}`, fields)
  if (part === 'headers') {
    if (problems.some(e => e.pointer === '/idempotency-key')) {
      return new DomainError('IDEMPOTENCY_KEY_MISSING', 'this request moves money: send an Idempotency-Key header (1-255 characters, not white space alone) unique to it', fields)
    }
    return new DomainError('BAD_REQUEST', `${label}: ${summary}`, fields)
  }
  return new DomainError('INVALID_QUERY', `${label}: ${summary}`, fields)
}

export default fp(async (app) => {
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : lenient).compile(hardenText(schema) as object))
}, { name: 'validation' })
