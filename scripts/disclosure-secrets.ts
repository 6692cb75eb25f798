// npx tsx scripts/disclosure-secrets.ts [seed] [secrets]
//
// The attack suite's differencing attack (support/attack.ts, docs/disclosure.md) over many perturbation
// secrets, on the suite's simulated economy (500 members, 180 businesses, 30 days; seed 14 unless given): the
// suite runs eight secrets in CI, this runs as many as asked (48 unless given) to look for the rare secret that
// lets an estimate through. The economy is loaded once into a fresh database on the machine's PostgreSQL, the
// flows figures of every range of the two-week window are read once, and only the perturbation is recomputed per
// secret. Prints, per secret, the protected (range, cell)s attacked and recovered within the protection level,
// and for each recovered one its day cells: value, largest part, accounts, the noise it got, and its margin group.
import { createHash } from 'node:crypto'
import pg from 'pg'
import { direction, RULES } from '../src/domain/disclosure.js'
import { formatMoney } from '../src/domain/money.js'
import { DAY_MS, isoDate, tile } from '../src/domain/periods.js'
import { catchUp } from '../src/reports/aggregate.js'
import { flowFigures, marginClass, publishFlows, type FlowFigure } from '../src/reports/flows.report.js'
import { toMicros } from '../src/reports/stat.js'
import { DEFAULT_PARAMETERS } from '../src/simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../src/simulator/run.js'
import { createTestDb } from '../support/postgres.js'
import { accountParts, attack, exposed, rangeKey, truthOf, type Published, type Truth } from '../support/attack.js'

const END = new Date('2026-03-02T00:00:00Z')
const W = 14
const seed = Number(process.argv[2] ?? 14)
const secrets = Number(process.argv[3] ?? 48)

async function main (): Promise<void> {
  const db = await createTestDb()
  const sim = simulatorPool(db.url)
  const params = structuredClone(DEFAULT_PARAMETERS)
  params.scale = { members: 500, businesses: 180, days: 30 }
  params.currency.code = 'ATK'
  const prepared = await prepareSimulation(sim, { seed, end: END, params })
  await prepared.post()
  await sim.end()
  const pool = new pg.Pool({ connectionString: db.url, max: 2 })
  try {
    await catchUp(pool)
    const id = prepared.currency.id
    const c = (await pool.query<{ local_areas: string[], decimals: number }>('SELECT local_areas, decimals FROM currency WHERE id = $1', [id])).rows[0]
    const day0 = END.getTime() - W * DAY_MS
    for (const by of ['sector', 'district'] as const) {
      const figs = new Map<string, FlowFigure[]>()
      const truth = new Map<string, Map<string, Truth>>()
      const margins = new Map<string, Map<string, bigint>>()
      for (let a = 0; a < W; a++) {
        for (let b = a + 1; b <= W; b++) {
          const f = await flowFigures(pool, id, tile(day0 + a * DAY_MS, day0 + b * DAY_MS), by)
          figs.set(rangeKey(a, b), f)
          truth.set(rangeKey(a, b), truthOf(f, by, c.local_areas))
        }
      }
      const group = (f: FlowFigure) => `${marginClass(by, f.payer, c.local_areas)}>${marginClass(by, f.payee, c.local_areas)}`
      // the exact group totals the exports give: a group's day total when the accounts export places every account
      // of every cell of the group that day (k-anonymity withholds some areas), and a range's when every day's is
      const daily = Array.from({ length: W }, (_, k) => {
        const m = new Map<string, bigint | null>()
        for (const f of figs.get(rangeKey(k, k + 1))!) {
          const g = group(f)
          const v = m.get(g)
          m.set(g, v === null || !f.days[0].given ? null : (v ?? 0n) + toMicros(f.volume.value))
        }
        return m
      })
      for (let a = 0; a < W; a++) {
        for (let b = a + 1; b <= W; b++) {
          const m = new Map<string, bigint | null>()
          for (let k = a; k < b; k++) for (const [g, v] of daily[k]) { const x = m.get(g); m.set(g, x === null || v === null ? null : (x ?? 0n) + v) }
          margins.set(rangeKey(a, b), new Map([...m].filter((x): x is [string, bigint] => x[1] !== null)))
        }
      }
      const parts = await accountParts(pool, id, isoDate(day0), W, by)
      const alone = new Map<string, boolean[]>()
      for (let k = 0; k < W; k++) {
        const cells = figs.get(rangeKey(k, k + 1))!
        for (const f of cells) {
          const lone = alone.get(`${f.payer}>${f.payee}`) ?? Array<boolean>(W).fill(false)
          // public that day: alone in its group, and given by the exports or passing the rules on its own
          lone[k] = cells.filter(x => group(x) === group(f)).length === 1 &&
            (f.days[0].given || !truth.get(rangeKey(k, k + 1))!.get(`${f.payer}>${f.payee}`)!.protected)
          alone.set(`${f.payer}>${f.payee}`, lone)
        }
      }
      const judged = new Map([...truth].map(([rk, cells]) => { const [a, b] = rk.split(':').map(Number); return [rk, exposed(cells, parts, alone, a, b)] }))
      let failing = 0
      for (let i = 0; i < secrets; i++) {
        const key = createHash('sha256').update(`circulate attack suite|${i}`).digest()
        const published: Published = new Map()
        const sums = new Map<string, Map<string, bigint>>()
        let unbalanced = 0
        for (const [rk, f] of figs) {
          const p = publishFlows(key, f, by, c.local_areas, RULES, c.decimals)
          published.set(rk, new Map(f.map((x, j) => [`${x.payer}>${x.payee}`, p[j].verdict != null ? null : toMicros(formatMoney(p[j].value, c.decimals))])))
          sums.set(rk, new Map(f.map((x, j) => [`${x.payer}>${x.payee}`, toMicros(p[j].value)])))
          unbalanced += p.filter(x => x.unbalanced === true).length
        }
        const r = attack(W, judged, published, margins)
        if (r.recovered.length > 0) failing++
        console.log(`${by}, secret ${i}: attacked ${r.attacked}, recovered ${r.recovered.length}, exact ${r.exact}, given by the exports ${r.byExports}; (range, cell)s hidden for an unbalanced day ${unbalanced}`)
        for (const x of r.recovered.slice(0, 4)) {
          const [a, b] = x.range.split(':').map(Number)
          const dir = direction(key, `flows|${by}|${x.cell.replace('>', '|')}`) > 0n ? 'up' : 'down'
          console.log(`  ${x.cell} [${a},${b}): truth ${x.truth}, estimate ${x.estimate} (${x.how}), level ${x.level}, direction ${dir}`)
          for (let k = a; k < b; k++) {
            const me = figs.get(rangeKey(k, k + 1))!.find(f => `${f.payer}>${f.payee}` === x.cell)
            if (me == null) { console.log(`    day ${k}: none`); continue }
            const mates = figs.get(rangeKey(k, k + 1))!.filter(f => group(f) === group(me))
            const noise = sums.get(rangeKey(k, k + 1))!.get(x.cell)! - toMicros(me.volume.value)
            const d = me.days[0]
            console.log(`    day ${k}: value ${d.value}, largest part ${d.x1}, ${d.n} accounts, noise ${noise} (${(Number(noise) / Number(toMicros(d.x1)) * 100).toFixed(1)}%), group: ${mates.map(m => `${m.payer}>${m.payee} (${m.volume.n})`).join(' ')}`)
          }
        }
      }
      console.log(`${by}: ${failing} of ${secrets} secrets let an estimate within the protection level\n`)
    }
  } finally {
    await pool.end()
    await db.drop()
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
