// npm run docs: writes the tables the docs generate rather than restate, between their markers:
// - docs/api.md, the route table, from openapi.yaml (so from the route schemas), and the error codes, from
//   src/domain/errors.ts (each code's status and the /** */ comment above it);
// - docs/architecture.md, the SQL functions and the migration holding each current body, from prisma/migrations;
// - docs/operations.md, the configuration table, from the config schema in src/config.ts (names, defaults, limits)
//   and the /** */ comment above each variable (its meaning).
// test/docs/tables.test.ts fails when a committed table differs from what this writes.
import fs from 'node:fs'
import ts from 'typescript'
import YAML from 'yaml'
import { ConfigSchema } from '../src/config.js'
import { ERROR_STATUS } from '../src/domain/errors.js'

const root = new URL('../', import.meta.url)
const read = (path: string) => fs.readFileSync(new URL(path, root), 'utf8')
const cell = (s: string) => s.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim()

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const

/** One row per operation of openapi.yaml, in the document's order: method, path, who may call, what it does. */
export function routeTable (openapi: string = read('openapi.yaml')): string {
  const doc = YAML.parse(openapi) as { paths: Record<string, Record<string, { summary?: string, security?: unknown[], tags?: string[] }>> }
  const rows = ['| method | path | token | what |', '| --- | --- | --- | --- |']
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) {
      const op = item[m]
      if (op == null) continue
      const open = Array.isArray(op.security) && op.security.length === 0
      rows.push(`| ${m.toUpperCase()} | \`${path}\` | ${open ? 'none' : 'bearer'} | ${cell(op.summary ?? '')} |`)
    }
  }
  return rows.join('\n')
}

/** The /** *\/ comment above each property of the object literal `name` is made of (src/config.ts's
 *  `ConfigSchema = Type.Object({...})`, src/domain/errors.ts's `ERROR_STATUS = {...} as const`). */
function propertyComments (source: string, name: string): Map<string, string> {
  const file = ts.createSourceFile('source.ts', source, ts.ScriptTarget.Latest, true)
  const out = new Map<string, string>()
  const literal = (e: ts.Expression | undefined): ts.ObjectLiteralExpression | undefined => {
    if (e == null) return undefined
    if (ts.isObjectLiteralExpression(e)) return e
    if (ts.isAsExpression(e)) return literal(e.expression)
    if (ts.isCallExpression(e)) return literal(e.arguments[0])
    return undefined
  }
  const visit = (node: ts.Node) => {
    const o = ts.isVariableDeclaration(node) && node.name.getText() === name ? literal(node.initializer) : undefined
    if (o != null) {
      for (const p of o.properties) {
        const docs = ts.getJSDocCommentsAndTags(p).filter(ts.isJSDoc)
        const text = docs.map(d => typeof d.comment === 'string' ? d.comment : ts.getTextOfJSDocComment(d.comment) ?? '').join(' ')
        if (p.name != null) out.set(p.name.getText(), text.replace(/\s*\n\s*\*?\s*/g, ' ').trim())
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return out
}

interface Prop { type?: string, default?: unknown, enum?: unknown[], minimum?: number, maximum?: number, exclusiveMinimum?: number, pattern?: string, minLength?: number }

function accepts (s: Prop): string {
  if (Array.isArray(s.enum)) return s.enum.map(v => `\`${String(v)}\``).join(', ')
  const parts = [s.minimum != null ? `≥ ${s.minimum}` : null, s.exclusiveMinimum != null ? `> ${s.exclusiveMinimum}` : null,
    s.maximum != null ? `≤ ${s.maximum}` : null].filter(x => x != null)
  const range = s.minimum != null && s.maximum != null ? ` ${s.minimum}–${s.maximum}` : parts.length > 0 ? ` ${parts.join(', ')}` : ''
  if (s.type === 'integer') return `integer${range}`
  if (s.type === 'number') return `number${range}`
  if (s.type === 'boolean') return 'true, false'
  if (s.pattern != null) return `text matching \`${s.pattern}\``
  // a shorter value stops the service at start, so the table says so
  if (s.minLength != null && s.minLength > 1) return `text, at least ${s.minLength} characters`
  return 'text'
}

/** One row per variable of the config schema, in its order: name, default, what it accepts, meaning. */
export function configTable (source: string = read('src/config.ts')): string {
  const comments = propertyComments(source, 'ConfigSchema')
  const schema = ConfigSchema as unknown as { properties: Record<string, Prop>, required?: string[] }
  const rows = ['| variable | default | accepts | meaning |', '| --- | --- | --- | --- |']
  for (const [name, s] of Object.entries(schema.properties)) {
    const def = s.default !== undefined ? `\`${String(s.default)}\`` : 'unset'
    rows.push(`| \`${name}\` | ${def} | ${accepts(s)} | ${cell(comments.get(name) ?? '')} |`)
  }
  return rows.join('\n')
}

/** One row per error code of src/domain/errors.ts, in its order: status, code, and the /** *\/ comment above it. */
export function errorTable (source: string = read('src/domain/errors.ts')): string {
  const comments = propertyComments(source, 'ERROR_STATUS')
  const rows = ['| status | code | meaning |', '| --- | --- | --- |']
  for (const [code, status] of Object.entries(ERROR_STATUS)) rows.push(`| ${status} | \`${code}\` | ${cell(comments.get(code) ?? '')} |`)
  return rows.join('\n')
}

/** Every SQL function the migrations leave defined, and the migration that holds its current body. */
export function sqlFunctionTable (): string {
  const dir = new URL('prisma/migrations/', root)
  const current = new Map<string, { body: string, first: string }>()
  for (const name of fs.readdirSync(dir).filter(n => /^\d{14}_/.test(n)).sort()) {
    const file = new URL(`${name}/migration.sql`, dir)
    if (!fs.existsSync(file)) continue
    const sql = fs.readFileSync(file, 'utf8').replace(/--[^\n]*/g, '')
    for (const m of sql.matchAll(/\b(create(?:\s+or\s+replace)?|drop)\s+function\s+(?:if\s+exists\s+)?(?:public\.)?([a-z_][a-z0-9_]*)/gi)) {
      const fn = m[2].toLowerCase()
      if (m[1].toLowerCase() === 'drop') current.delete(fn)
      else current.set(fn, { body: name, first: current.get(fn)?.first ?? name })
    }
  }
  const rows = ['| function | current body in | first made in |', '| --- | --- | --- |']
  for (const [fn, { body, first }] of [...current].sort(([a], [b]) => a.localeCompare(b))) {
    rows.push(`| \`${fn}()\` | \`${body}\` | ${first === body ? 'the same' : `\`${first}\``} |`)
  }
  return rows.join('\n')
}

export const TABLES = [
  { file: 'docs/api.md', marker: 'routes', make: () => routeTable() },
  { file: 'docs/api.md', marker: 'errors', make: () => errorTable() },
  { file: 'docs/operations.md', marker: 'config', make: () => configTable() },
  { file: 'docs/architecture.md', marker: 'sql-functions', make: () => sqlFunctionTable() }
]

/** The text between `<!-- marker:start -->` and `<!-- marker:end -->` (null when the markers are missing). */
export function between (text: string, marker: string): string | null {
  const m = new RegExp(`<!-- ${marker}:start[^>]*-->\\n(?:([\\s\\S]*?)\\n)?<!-- ${marker}:end -->`).exec(text)
  return m == null ? null : m[1] ?? ''
}

export function writeTables (): string[] {
  const written: string[] = []
  for (const t of TABLES) {
    const text = read(t.file)
    if (between(text, t.marker) == null) throw new Error(`${t.file} has no <!-- ${t.marker}:start --> ... <!-- ${t.marker}:end --> markers`)
    const next = text.replace(new RegExp(`(<!-- ${t.marker}:start[^>]*-->\\n)(?:[\\s\\S]*?\\n)?(<!-- ${t.marker}:end -->)`), (_, a, b) => `${a}${t.make()}\n${b}`)
    if (next !== text) { fs.writeFileSync(new URL(t.file, root), next); written.push(t.file) }
  }
  return written
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const written = writeTables()
  console.log(written.length === 0 ? 'docs tables are current' : `docs tables written: ${written.join(', ')}`)
}
