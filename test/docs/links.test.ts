import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'

// No dead ends: every link in README.md, CONTRIBUTING.md and docs/ leads to a file of this repository (and to a
// heading that exists, when it names one); every file path the docs name in backticks exists; no file of the
// repository refers to files outside it; and every docs page is reachable from the README.

const root = path.resolve(import.meta.dirname, '../..')
const SKIP = new Set(['node_modules', '.git', '.scratch', 'dist', 'coverage', '.tap', '.data', 'generated', 'bench'])

function walk (dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue
    const p = path.join(dir, e.name)
    if (e.isDirectory()) walk(p, out)
    else out.push(p)
  }
  return out
}

const rel = (p: string) => path.relative(root, p)
const docsPages = fs.readdirSync(path.join(root, 'docs')).filter(f => f.endsWith('.md')).map(f => path.join(root, 'docs', f))
const markdown = [path.join(root, 'README.md'), path.join(root, 'CONTRIBUTING.md'), ...docsPages]

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')
function anchors (file: string): Set<string> {
  const text = fs.readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map(m => slug(m[1])))
}

/** Links of a markdown text, outside code blocks and code spans. */
function links (text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '')
  return [...prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map(m => m[1])
}

t.test('every link in README.md, CONTRIBUTING.md and docs/ leads to a file (and heading) of the repository', async t => {
  let checked = 0
  for (const file of markdown) {
    for (const link of links(fs.readFileSync(file, 'utf8'))) {
      if (/^(https?|mailto):/.test(link)) continue
      const [target, anchor] = link.split('#') as [string, string | undefined]
      const resolved = target === '' ? file : path.resolve(path.dirname(file), decodeURI(target))
      checked++
      if (!resolved.startsWith(root + path.sep)) { t.fail(`${rel(file)}: ${link} points outside the repository`); continue }
      if (!fs.existsSync(resolved)) { t.fail(`${rel(file)}: ${link} points at a missing file`); continue }
      if (anchor != null && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) t.fail(`${rel(file)}: ${link}: no heading #${anchor} in ${rel(resolved)}`)
    }
  }
  t.ok(checked >= 30, `${checked} links checked`)
})

t.test('every file path the docs name in backticks exists', async t => {
  const PATH = /`((?:src|test|test-faults|scripts|prisma|docs|public|\.ci)\/[\w./-]*\w)`/g
  let checked = 0
  for (const file of markdown) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(PATH)) {
      const p = m[1]
      checked++
      if (!fs.existsSync(path.join(root, p))) t.fail(`${rel(file)} names \`${p}\`, which is not in the repository`)
    }
  }
  t.ok(checked >= 50, `${checked} paths checked`)
})

t.test('no file of the repository refers to files outside it', async t => {
  // Spelled in pieces so that this file does not match itself.
  const OUTSIDE = new RegExp(['\\.\\./' + 'shared', 'PRODUCT' + '\\.md', 'TOOLCHAIN' + '\\.md'].join('|'))
  const files = walk(root).filter(f => /\.(ts|js|mjs|sh|sql|md|ya?ml|json|prisma|html|css)$|Dockerfile$|\/run$/.test(f) &&
    !f.endsWith('package-lock.json'))
  t.ok(files.length > 100, `${files.length} files read`)
  for (const f of files) {
    const lines = fs.readFileSync(f, 'utf8').split('\n')
    lines.forEach((line, i) => { if (OUTSIDE.test(line)) t.fail(`${rel(f)}:${i + 1} refers to a file outside the repository: ${line.trim().slice(0, 120)}`) })
  }
})

t.test('every section a file names in quotes (docs/ledger.md, "Coalescing") exists', async t => {
  // Comments and docs point at a section by its title in quotes, after the page's name: the page's heading must
  // start with that title, or a paragraph of the page must open with it in bold.
  const REF = /\b((?:docs\/)?[a-z-]+\.md|README|CONTRIBUTING)\)?,?\s+(?:section\s+)?"([^"\n]{2,100})"/g
  const files = walk(root).filter(f => /\.(ts|js|mjs|sh|sql|md|ya?ml|prisma|html|css)$|Dockerfile$/.test(f) &&
    !f.endsWith('package-lock.json'))
  let checked = 0
  for (const f of files) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(REF)) {
      const name = /^(README|CONTRIBUTING)$/.test(m[1]) ? `${m[1]}.md` : m[1]
      const target = path.join(root, name.includes('/') || /^(README|CONTRIBUTING)\.md$/.test(name) ? name : `docs/${name}`)
      checked++
      if (!fs.existsSync(target)) { t.fail(`${rel(f)}: ${m[0]}: no such page`); continue }
      const text = fs.readFileSync(target, 'utf8').replace(/```[\s\S]*?```/g, '')
      const title = m[2].replace(/`/g, '')
      const headings = [...text.matchAll(/^#{1,6} (.+)$/gm)].map(h => h[1].replace(/`/g, ''))
      if (!headings.some(h => h.startsWith(title)) && !text.includes(`**${m[2]}`)) t.fail(`${rel(f)}: ${m[0]}: no such section in ${rel(target)}`)
    }
  }
  t.ok(checked >= 30, `${checked} section references checked`)
})

t.test('every docs page is linked from the README', async t => {
  const readme = links(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).map(l => l.split('#')[0])
  for (const page of docsPages) t.ok(readme.includes(rel(page)), `README links ${rel(page)}`)
  t.ok(readme.includes('CONTRIBUTING.md'), 'README links CONTRIBUTING.md')
})

t.test('the README stays short', async t => {
  const size = fs.statSync(path.join(root, 'README.md')).size
  t.ok(size < 12 * 1024, `README.md is ${size} bytes (under 12 KB)`)
})
