import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import fs from 'node:fs'
import YAML from 'yaml'

// Validates responses against the committed openapi.yaml, so every response a test sees is one the contract
// documents (status, content type and body schema).
const addFormats = addFormatsModule as unknown as (a: Ajv2020) => Ajv2020

interface Op { responses?: Record<string, { content?: Record<string, { schema?: object }> }> }
export interface OpenApiDoc { paths: Record<string, Record<string, Op>>, components?: { schemas?: Record<string, object> } }

export const loadOpenApi = (file = new URL('../openapi.yaml', import.meta.url)): OpenApiDoc =>
  YAML.parse(fs.readFileSync(file, 'utf8')) as OpenApiDoc

export function responseValidator (doc: OpenApiDoc) {
  const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }))
  ajv.addSchema({ $id: 'doc', components: doc.components ?? {} })
  const templates = Object.keys(doc.paths).map(p => ({
    p, re: new RegExp('^' + p.replace(/\{[^}]+\}/g, '[^/]+') + '$'),
  }))
  const cache = new Map<object, ReturnType<Ajv2020['compile']>>()
  const fixRefs = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(fixRefs)
    if (s != null && typeof s === 'object') {
      return Object.fromEntries(Object.entries(s).map(([k, v]) =>
        [k, k === '$ref' && typeof v === 'string' ? v.replace(/^#\//, 'doc#/') : fixRefs(v)]))
    }
    return s
  }

  /** Returns null when the response agrees with the document, else what disagrees. */
  return (method: string, url: string, status: number, contentType: string | undefined, body: unknown): string | null => {
    const path = url.split('?')[0]
    const t = templates.find(x => x.re.test(path))
    if (t == null) return `${method} ${path}: not in openapi.yaml`
    const op = doc.paths[t.p][method.toLowerCase()]
    if (op == null) return `${method} ${t.p}: method not in openapi.yaml`
    const res = op.responses?.[String(status)]
    if (res == null) return `${method} ${t.p}: status ${status} not documented`
    if (res.content == null) return null
    const mediaType = (contentType ?? '').split(';')[0].trim()
    const media = res.content[mediaType]
    if (media == null) return `${method} ${t.p} ${status}: content type ${mediaType} not documented (${Object.keys(res.content).join(', ')})`
    if (media.schema == null) return null
    let validate = cache.get(media.schema)
    if (validate == null) { validate = ajv.compile(fixRefs(media.schema) as object); cache.set(media.schema, validate) }
    if (!validate(body)) return `${method} ${t.p} ${status}: ${ajv.errorsText(validate.errors)}`
    return null
  }
}
