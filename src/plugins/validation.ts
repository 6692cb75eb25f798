import { Ajv, type Options } from 'ajv'
import addFormatsModule from 'ajv-formats'
import fp from 'fastify-plugin'

// Fastify's default Ajv coerces types and strips unknown properties. For request bodies that is wrong for a
// ledger: a JSON number amount would become a string, and a misspelt field would vanish silently. Bodies are
// validated strictly (no coercion, unknown fields refused); query strings and path params coerce, since their
// values are always strings on the wire.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
const base: Options = { useDefaults: true, removeAdditional: false, allErrors: true, strict: false }
const strict = addFormats(new Ajv({ ...base, coerceTypes: false }))
const lenient = addFormats(new Ajv({ ...base, coerceTypes: 'array' }))

export default fp(async (app) => {
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : lenient).compile(schema as object))
}, { name: 'validation' })
