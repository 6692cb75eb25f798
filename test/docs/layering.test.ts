import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'

// The folders and what each may import (docs/testing.md, "Where the code lives"): the service (src/) imports none
// of the others; the helpers the tests, the reliability suite and the scripts share live once, in support/, which
// imports only src/; nothing outside test/ imports from test/. And no helper of support/ is written again in
// test/, test-faults/ or scripts/.

const root = path.resolve(import.meta.dirname, '../..')
const FOLDERS = ['src', 'support', 'test', 'test-faults', 'scripts']
/** for each folder, the folders its files must not import from */
const FORBIDDEN: Record<string, string[]> = {
  src: ['support', 'test', 'test-faults', 'scripts'],
  support: ['test', 'test-faults', 'scripts'],
  'test-faults': ['test'],
  scripts: ['test', 'test-faults'],
  test: ['test-faults'],
}

function tsFiles (dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) { if (e.name !== 'generated' && e.name !== 'node_modules') tsFiles(p, out) } else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

const files = Object.fromEntries(FOLDERS.map(f => [f, tsFiles(path.join(root, f))]))
const rel = (p: string) => path.relative(root, p)
/** the top-level folder a relative import of `file` lands in (null for a package) */
function importedFolders (file: string): Array<{ spec: string, folder: string }> {
  const text = fs.readFileSync(file, 'utf8')
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)].map(m => m[1])
  return specs.map(spec => ({ spec, folder: rel(path.resolve(path.dirname(file), spec)).split(path.sep)[0] }))
}

t.test('no folder imports from one it must not', async t => {
  let checked = 0
  for (const [folder, forbidden] of Object.entries(FORBIDDEN)) {
    for (const file of files[folder]) {
      for (const { spec, folder: target } of importedFolders(file)) {
        checked++
        if (forbidden.includes(target)) t.fail(`${rel(file)} imports ${spec} (${folder}/ must not import from ${target}/)`)
      }
    }
  }
  t.ok(checked > 500, `${checked} relative imports checked`)
})

t.test('every helper support/ exports is defined there only', async t => {
  const exported = new Set(files.support.flatMap(f =>
    [...fs.readFileSync(f, 'utf8').matchAll(/^export (?:async )?(?:function|const|class) (\w+)/gm)].map(m => m[1])))
  t.ok(exported.has('freePort') && exported.has('createTestDb') && exported.has('startService'), 'the exports are read')
  // names that test/helper.ts uses for something else: its in-process call (app.inject) and its own issuer
  for (const name of ['call', 'ISSUER']) exported.delete(name)
  for (const folder of ['test', 'test-faults', 'scripts']) {
    for (const file of files[folder]) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/^\s*(?:export )?(?:async )?(?:function|const|let|class) (\w+)\b/gm)) {
        if (exported.has(m[1])) t.fail(`${rel(file)} defines ${m[1]} again; import it from support/`)
      }
    }
  }
})
