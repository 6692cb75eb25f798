import type { Channel } from '../schemas/ledger.js'
import { feeFor, Money } from '../domain/money.js'
import { addDays, dateOf, firstDue, nextDue, type Schedule } from '../domain/schedule.js'
import { SECTOR_NAMES, type District, type SectorName, type SimulationParameters } from './parameters.js'
import { Prng, WeightedTable } from './prng.js'

// The simulated economy, in memory and free of any database: agents (members, businesses, the council) and, day
// by day, the money movements they make. It keeps every balance exactly as the ledger will (the receiver's fee,
// the redemption fee), so no movement it emits can pass an account's floor; the runner posts them through the
// ledger's write path and checks at the end that both agree.
//
// Wages and business rates are standing orders (SimOrder): the economy says which orders exist, and on each day
// one of them is due, what the service's scheduler will do at its look that morning (SimOrderRun: paid, refused and
// retried the next day, or refused for good), keeping balances as the ledger will. The runner creates the orders
// and lets the scheduler's own code pay them at that simulated instant (src/simulator/run.ts).
//
// Deterministic: everything random comes from one seeded Prng, drawn in a fixed order (agents in index order,
// a day's intents sorted by time then by the order they were made).

export type Purpose = 'top-up' | 'purchase' | 'peer' | 'supplier' | 'wages' | 'rates' | 'council' | 'redemption'

export interface Agent {
  index: number
  kind: 'member' | 'business'
  name: string
  postcode: string
  district: string
  sector: SectorName | null
  independent: boolean | null
  /** day of the simulated period the agent joined (0: before the first day) */
  joinDay: number
  isCouncil: boolean
}

/** One money movement, in the ledger's terms. Agents are indexes into Economy.agents. */
export interface SimEvent {
  at: Date
  kind: 'issuance' | 'payment' | 'redemption'
  purpose: Purpose
  /** payer agent; null for an issuance (the currency's issuance account) */
  from: number | null
  /** payee agent; null for a redemption (back to the issuance account) */
  to: number | null
  /** issuance: amount issued; payment: amount paid; redemption: amount taken from the account, fee included */
  amount: Money
  /** payment: the receiver's fee for the channel; redemption: the redemption fee; issuance: zero */
  fee: Money
  channel: Channel | null
  reference: string | null
  /** a standing order's payment (the scheduler posts it, not the runner): the order and the due date it pays */
  order?: { index: number, dueOn: string }
}

/** A standing order the simulated businesses set up: wages (business to staff) or business rates (to the council). */
export interface SimOrder {
  index: number
  purpose: 'wages' | 'rates'
  from: number
  to: number
  amount: Money
  schedule: Schedule
  /** calendar dates (YYYY-MM-DD) */
  startsOn: string
  endsOn: string | null
  reference: string
}

/** One look of the scheduler on a day something is due: when, and what it must find. */
export interface SimOrderRun { at: Date, paid: number, retrying: number, failed: number }

/** The hour (UTC) of the scheduler's look on a simulated day: before anyone trades, after the payroll top-ups. */
export const SCHEDULER_HOUR = 6
/** Tries of an occurrence, as the scheduler makes them (src/scheduler/standing-orders.ts MAX_ATTEMPTS). */
const ORDER_ATTEMPTS = 2

export interface EconomyOptions {
  seed: number
  /** last instant of the simulated period (exclusive), normally a UTC midnight */
  end: Date
}

interface MemberState {
  agent: number
  rate: number
  topUp: Money
  topUpEvery: number
  nextTopUp: number
  channel: 'app' | 'text' | 'online'
}

interface BusinessState {
  agent: number
  popularity: number
  float: Money
  supplierDay: number
  staff: number[]
  wage: Money | null
  rates: Money | null
}

interface Intent { ms: number, seq: number, run: () => SimEvent | null }

interface Due { order: SimOrder, dueOn: string, attempts: number }

const DAY_MS = 86_400_000
const INWARD_LETTERS = 'ABDEFGHJLNPQRSTUWXYZ'
const FIRST = ['Amara', 'Ben', 'Chloe', 'Dev', 'Ellie', 'Femi', 'Grace', 'Hassan', 'Isla', 'Jack', 'Kiran', 'Laura',
  'Mo', 'Niamh', 'Owen', 'Priya', 'Rosa', 'Sam', 'Tom', 'Uma', 'Viktor', 'Wen', 'Yusuf', 'Zoe']
const LAST = ['Ahmed', 'Baker', 'Clarke', 'Davies', 'Evans', 'Fisher', 'Green', 'Hughes', 'Iqbal', 'Jones', 'Khan',
  'Lewis', 'Morgan', 'Nowak', 'Okafor', 'Patel', 'Reid', 'Smith', 'Taylor', 'Walsh', 'Williams', 'Young']
const WORDS = ['Harbour', 'Avon', 'Brunel', 'Cabot', 'Severn', 'Kingsdown', 'Redcliffe', 'Hotwells', 'Montpelier',
  'Totterdown', 'Windmill', 'Frome', 'Arnos', 'Ashton', 'Whiteladies', 'Spike Island', 'Christmas Steps', 'Old Market',
  'Brandon Hill', 'Easton', 'Bearpit', 'Wapping', 'Cotham', 'Southville', 'Narrow Quay', 'Leigh Woods']
const NOUNS: Record<SectorName, string[]> = {
  food: ['Bakery', 'Greengrocer', 'Butchers', 'Deli', 'Wholefoods', 'Fishmonger', 'Cheese Shop', 'Grocers'],
  'cafes-pubs': ['Cafe', 'Coffee House', 'Tavern', 'Arms', 'Kitchen', 'Tap Room', 'Canteen', 'Inn'],
  retail: ['Books', 'Hardware', 'Bike Shop', 'Records', 'Gifts', 'Clothing', 'Stationers', 'Toy Shop'],
  services: ['Cleaners', 'Accountants', 'Printers', 'Hair Studio', 'Laundrette', 'Repairs', 'Design Studio', 'Tailors'],
  trades: ['Builders', 'Plumbing', 'Electrical', 'Joinery', 'Roofing', 'Decorators', 'Glaziers', 'Landscaping'],
  arts: ['Gallery', 'Theatre', 'Studios', 'Music', 'Framers', 'Pottery', 'Cinema', 'Dance School'],
  health: ['Pharmacy', 'Yoga', 'Physiotherapy', 'Dental Care', 'Opticians', 'Therapies', 'Herbalist', 'Pilates'],
}

export class Economy {
  readonly agents: Agent[] = []
  /** every agent's balance as the ledger holds it */
  readonly balances: Money[] = []
  readonly start: Date
  readonly days: number
  /** the standing orders for wages and business rates, made before the first day */
  readonly orders: SimOrder[] = []
  /** the scheduler's looks, in time order, as the days run */
  readonly orderRuns: SimOrderRun[] = []
  /** per order, its next due date (null: no more) */
  private readonly nextDue: Array<string | null> = []
  /** occurrences refused once, tried again the next day */
  private retries: Array<Due & { on: string }> = []
  private readonly rng: Prng
  private readonly zero = new Money(0)
  private readonly members: MemberState[] = []
  private readonly businesses: BusinessState[] = []
  private council = -1
  private readonly byDistrict = new Map<string, number[]>()
  private readonly shops = new Map<string, WeightedTable<number>>()
  private readonly suppliers = new Map<string, WeightedTable<number>>()
  private readonly spendSectors: WeightedTable<SectorName>
  private readonly fees: Record<Channel, Money>
  private readonly redemptionFee: Money
  private readonly decimals: number

  constructor (readonly params: SimulationParameters, opts: EconomyOptions) {
    this.rng = new Prng(opts.seed)
    this.days = params.scale.days
    this.start = new Date(opts.end.getTime() - this.days * DAY_MS)
    const c = params.currency
    this.decimals = c.decimals
    this.fees = Object.fromEntries(Object.entries(c.fees).map(([k, v]) => [k, new Money(v)])) as Record<Channel, Money>
    this.redemptionFee = new Money(c.redemptionFee)
    if (params.scale.members < 2 || params.scale.businesses < 2) throw new Error('the simulation needs at least 2 members and 2 businesses')
    this.spendSectors = new WeightedTable(SECTOR_NAMES, SECTOR_NAMES.map(s => params.sectors.memberSpendShare[s]))
    this.makeBusinesses()
    this.makeMembers()
    this.makeTables()
    this.makeEmployers()
    this.makeOrders()
  }

  /** The movements of one simulated day (0-based), in time order. */
  day (d: number): SimEvent[] {
    const date = new Date(this.start.getTime() + d * DAY_MS)
    const p = this.params
    const rng = this.rng
    const weekday = date.getUTCDay()
    const month = date.getUTCMonth()
    const dom = date.getUTCDate()
    const lastOfMonth = new Date(date.getTime() + DAY_MS).getUTCDate() === 1
    const activity = p.calendar.weekday[weekday] * p.calendar.month[month]
    const intents: Intent[] = []
    // a time of day around `hour`, spread evenly over `spreadHours`, in whole seconds
    const at = (hour: number, spreadHours: number) =>
      date.getTime() + Math.floor(Math.min(Math.max(hour + (rng.next() - 0.5) * spreadHours, 0), 23.999) * 3600) * 1000
    const add = (ms: number, run: Intent['run']) => { intents.push({ ms, seq: intents.length, run }) }

    for (const m of this.members) {
      const a = this.agents[m.agent]
      if (a.joinDay > d) continue
      if (d === Math.max(a.joinDay, m.nextTopUp)) {
        m.nextTopUp = d + m.topUpEvery
        add(at(13, 9), () => this.topUp(m, d === a.joinDay))
      }
      const n = rng.poisson(m.rate * activity)
      for (let i = 0; i < n; i++) add(at(rng.chance(0.3) ? 12.5 : 15, 10), () => this.purchase(m))
      if (rng.chance(p.members.peerPaymentPerDay)) add(at(19, 6), () => this.peer(m, d))
    }

    for (const b of this.businesses) {
      if (weekday === b.supplierDay && rng.chance(p.businesses.supplierWeekChance)) {
        const k = 1 + rng.int(p.businesses.supplierOrdersMax)
        for (let i = 0; i < k; i++) add(at(11, 6), () => this.supplierOrder(b))
      }
      // the wages go out by standing order at the scheduler's look (below): the employer buys what it lacks first
      if (lastOfMonth && b.wage != null) add(at(5, 1), () => this.payrollTopUp(b))
      if (lastOfMonth) add(at(17, 2), () => this.redeem(b))
    }

    const council = this.agents[this.council]
    if (council != null) {
      if (dom === 15) {
        for (let i = 0; i < p.council.monthlyPayments; i++) add(at(11, 6), () => this.councilSpend())
      }
      if (lastOfMonth) add(at(16, 1), () => this.councilRedeem())
    }

    // the scheduler's look: the orders due today and yesterday's refusals, paid at one instant
    const today = dateOf(date)
    const due: Due[] = this.retries.filter(r => r.on === today)
    this.retries = this.retries.filter(r => r.on !== today)
    for (const o of this.orders) {
      if (this.nextDue[o.index] !== today) continue
      due.push({ order: o, dueOn: today, attempts: 0 })
      const next = nextDue(o.schedule, today)
      this.nextDue[o.index] = o.endsOn != null && next > o.endsOn ? null : next
    }
    const out: SimEvent[] = []
    const emit = (e: SimEvent, ms: number) => { e.at = new Date(ms); this.apply(e); out.push(e) }
    const look = date.getTime() + SCHEDULER_HOUR * 3_600_000
    if (due.length > 0) add(look, () => { this.runOrders(look, today, due, e => { emit(e, look) }); return null })

    intents.sort((x, y) => x.ms - y.ms || x.seq - y.seq)
    for (const it of intents) {
      const e = it.run()
      if (e != null) emit(e, it.ms)
    }
    return out
  }

  /**
   * What the scheduler does at its look: each due occurrence paid if the payer has the amount, else refused and
   * tried again the next day, then refused for good. A payer's occurrences are independent of other payers' (a
   * payee of an order, staff or the council, pays no order), so the order in which the scheduler takes them
   * cannot change the outcome.
   */
  private runOrders (ms: number, today: string, due: Due[], emit: (e: SimEvent) => void) {
    const run: SimOrderRun = { at: new Date(ms), paid: 0, retrying: 0, failed: 0 }
    for (const d of due) {
      const o = d.order
      const e = this.payment(o.purpose, o.from, o.to, o.amount, 'online', o.reference)
      if (e != null) {
        e.order = { index: o.index, dueOn: d.dueOn }
        emit(e)
        run.paid++
      } else if (d.attempts + 1 >= ORDER_ATTEMPTS) {
        run.failed++
      } else {
        run.retrying++
        this.retries.push({ ...d, attempts: d.attempts + 1, on: addDays(today, 1) })
      }
    }
    this.orderRuns.push(run)
  }

  /** All the period's movements, day by day. */
  * run (): Generator<SimEvent[]> {
    for (let d = 0; d < this.days; d++) yield this.day(d)
  }

  /** A busy founding member and the most popular cafe: demo logins whose statements are full. */
  showcase (): { member: number, business: number } {
    const founders = this.members.filter(m => this.agents[m.agent].joinDay === 0)
    const member = founders.reduce((best, m) => m.rate > best.rate ? m : best, founders[0] ?? this.members[0])
    // a cafe that pays wages by standing order, if there is one: the demo's business login shows them
    const cafes = this.businesses.filter(b => this.agents[b.agent].sector === 'cafes-pubs')
    const employers = cafes.filter(b => b.staff.length > 0)
    const pool = employers.length > 0 ? employers : cafes.length > 0 ? cafes : this.businesses
    const business = pool.reduce((best, b) => b.popularity > best.popularity ? b : best, pool[0])
    return { member: member.agent, business: business.agent }
  }

  // --- agents ---------------------------------------------------------------------------------------------------

  private districtNames (weightOf: (d: District) => number): WeightedTable<string> {
    const names = Object.keys(this.params.districts)
    return new WeightedTable(names, names.map(n => weightOf(this.params.districts[n])))
  }

  private postcode (district: string): string {
    const r = this.rng
    return `${district} ${1 + r.int(9)}${INWARD_LETTERS[r.int(INWARD_LETTERS.length)]}${INWARD_LETTERS[r.int(INWARD_LETTERS.length)]}`
  }

  private addAgent (a: Omit<Agent, 'index'>): number {
    const index = this.agents.length
    this.agents.push({ ...a, index })
    this.balances.push(this.zero)
    return index
  }

  private makeBusinesses () {
    const p = this.params
    const r = this.rng
    const districts = this.districtNames(d => d.businesses)
    const sectors = new WeightedTable(SECTOR_NAMES, SECTOR_NAMES.map(s => p.sectors.businessShare[s]))
    const taken = new Set<string>()
    this.council = this.addAgent({
      kind: 'business', name: p.council.name, postcode: p.council.postcode, district: p.council.postcode.split(' ')[0],
      sector: 'services', independent: false, joinDay: 0, isCouncil: true,
    })
    for (let i = 1; i < p.scale.businesses; i++) {
      const district = districts.draw(r)
      const sector = sectors.draw(r)
      let name = `${r.pick(WORDS)} ${r.pick(NOUNS[sector])}`
      if (taken.has(name)) name = `${name}, ${p.districts[district].street}`
      for (let n = 2; taken.has(name); n++) name = `${name.replace(/ \d+$/, '')} ${n}`
      taken.add(name)
      const agent = this.addAgent({
        kind: 'business', name, postcode: this.postcode(district), district, sector,
        independent: r.chance(p.businesses.independentShare), joinDay: 0, isCouncil: false,
      })
      const popularity = r.logNormal(1, p.businesses.popularitySigma)
      // small businesses pay no rates (small business rate relief): payers come from the busier half
      const paysRates = popularity >= 1 && r.chance(2 * p.businesses.ratesPayerShare)
      this.businesses.push({
        agent, popularity,
        float: this.money(r.logNormal(p.businesses.floatMedian, p.businesses.floatSigma)),
        supplierDay: 1 + r.int(5), staff: [], wage: null,
        rates: paysRates ? this.money(p.businesses.ratesInstalmentMedian * Math.sqrt(popularity) * r.logNormal(1, 0.3)) : null,
      })
    }
  }

  private makeMembers () {
    const p = this.params
    const r = this.rng
    const districts = this.districtNames(d => d.members)
    const channels = ['app', 'text', 'online'] as const
    const channelWeights = channels.map(c => p.members.channels[c])
    for (let i = 0; i < p.scale.members; i++) {
      const district = districts.draw(r)
      const joinDay = r.chance(p.members.initialShare) ? 0 : 1 + r.int(Math.max(this.days - 1, 1))
      const agent = this.addAgent({
        kind: 'member', name: `${r.pick(FIRST)} ${r.pick(LAST)}`, postcode: this.postcode(district), district,
        sector: null, independent: null, joinDay, isCouncil: false,
      })
      const every = p.members.topUpEveryMinDays + r.int(p.members.topUpEveryMaxDays - p.members.topUpEveryMinDays + 1)
      this.members.push({
        agent, rate: r.logNormal(p.members.purchasesPerDayMedian, p.members.purchasesPerDaySigma),
        topUp: this.money(r.logNormal(p.members.topUpMedian, p.members.topUpSigma), 10), topUpEvery: every, nextTopUp: joinDay, channel: channels[r.weighted(channelWeights)],
      })
      const list = this.byDistrict.get(district) ?? []
      list.push(agent)
      this.byDistrict.set(district, list)
    }
  }

  private distance (a: string, b: string): number {
    const da = this.params.districts[a]
    const db = this.params.districts[b]
    if (da == null || db == null) return 0
    return Math.hypot(da.x - db.x, da.y - db.y)
  }

  /** For each district and sector: where people from there shop, and where businesses from there buy. */
  private makeTables () {
    const p = this.params
    for (const from of Object.keys(p.districts)) {
      for (const sector of SECTOR_NAMES) {
        const inSector = this.businesses.filter(b => this.agents[b.agent].sector === sector)
        const ids = inSector.map(b => b.agent)
        const shopW = inSector.map(b => {
          const d = this.agents[b.agent].district
          return b.popularity * Math.exp(-this.distance(from, d) / p.members.distanceDecayKm) * (d === 'BS1' ? p.members.cityCentrePull : 1)
        })
        const supW = inSector.map(b => b.popularity * Math.exp(-this.distance(from, this.agents[b.agent].district) / p.businesses.supplierDistanceDecayKm))
        this.shops.set(`${from}|${sector}`, new WeightedTable(ids, shopW))
        this.suppliers.set(`${from}|${sector}`, new WeightedTable(ids, supW))
      }
    }
  }

  /** Some businesses pay part of their staff's wages in the currency; staff are founding members living near. */
  private makeEmployers () {
    const p = this.params
    const r = this.rng
    const founders = this.members.filter(m => this.agents[m.agent].joinDay === 0).map(m => m.agent)
    if (founders.length === 0) return
    for (const b of this.businesses) {
      if (!r.chance(p.businesses.wagePayerShare)) continue
      const home = this.agents[b.agent].district
      const near = new WeightedTable(founders, founders.map(m => Math.exp(-this.distance(home, this.agents[m].district) / p.businesses.supplierDistanceDecayKm)))
      const n = 1 + r.int(p.businesses.staffMax)
      for (let i = 0; i < n; i++) {
        const s = near.draw(r)
        if (!b.staff.includes(s)) b.staff.push(s)
      }
      b.wage = this.money(r.logNormal(p.businesses.wageMedian, 0.4))
    }
  }

  /**
   * The standing orders: each employer pays each of its staff on the month's last day (day 31 falls on a shorter
   * month's last day); each rates payer pays the council ten monthly instalments on the 1st, April to January, one
   * order per financial year that overlaps the period (from the later of April 1 and the first simulated day).
   */
  private makeOrders () {
    const first = dateOf(this.start)
    const last = addDays(first, this.days - 1)
    const add = (o: Omit<SimOrder, 'index'>) => {
      const next = firstDue(o.schedule, o.startsOn)
      if (next > last || (o.endsOn != null && next > o.endsOn)) return
      this.orders.push({ ...o, index: this.orders.length })
      this.nextDue.push(next)
    }
    for (const b of this.businesses) {
      if (b.wage == null) continue
      for (const s of b.staff) {
        add({ purpose: 'wages', from: b.agent, to: s, amount: b.wage, schedule: { every: 'month', day: 31 }, startsOn: first, endsOn: null, reference: 'wages (part in local pounds)' })
      }
    }
    const firstYear = Number(first.slice(0, 4)) - 1
    const lastYear = Number(last.slice(0, 4))
    for (const b of this.businesses) {
      if (b.rates == null) continue
      for (let y = firstYear; y <= lastYear; y++) {
        const april = `${y}-04-01`
        const endsOn = `${y + 1}-01-01`
        if (endsOn < first) continue
        add({
          purpose: 'rates', from: b.agent, to: this.council, amount: b.rates, schedule: { every: 'month', day: 1 },
          startsOn: april > first ? april : first, endsOn, reference: `business rates ${y}/${String(y + 1).slice(2)}, 10 instalments`,
        })
      }
    }
  }

  // --- movements --------------------------------------------------------------------------------------------------

  /** A random draw as money: rounded to the currency's minor unit (the draw is a number; the amount never is). */
  private money (x: number, min = 1): Money {
    return Money.max(new Money(x.toFixed(this.decimals)), new Money(min))
  }

  private payment (purpose: Purpose, from: number, to: number, amount: Money, channel: Channel, reference: string | null): SimEvent | null {
    if (from === to || amount.lte(0) || this.balances[from].lt(amount)) return null
    return {
      at: this.start, kind: 'payment', purpose, from, to, amount, fee: feeFor(amount, this.fees[channel], this.decimals),
      channel, reference,
    }
  }

  private apply (e: SimEvent) {
    if (e.kind === 'issuance') this.balances[e.to!] = this.balances[e.to!].plus(e.amount)
    else if (e.kind === 'redemption') this.balances[e.from!] = this.balances[e.from!].minus(e.amount)
    else {
      this.balances[e.from!] = this.balances[e.from!].minus(e.amount)
      this.balances[e.to!] = this.balances[e.to!].plus(e.amount).minus(e.fee)
    }
  }

  private memberChannel (m: MemberState): 'app' | 'text' | 'online' {
    return this.rng.chance(0.8) ? m.channel : this.rng.pick(['app', 'text', 'online'] as const)
  }

  private businessChannel (): Channel {
    const c = this.params.businesses.channels
    return this.rng.next() * (c.online + c.api) < c.online ? 'online' : 'api'
  }

  /** A member tops up on their rhythm when their balance has run below their usual top-up (and on joining). */
  private topUp (m: MemberState, joining: boolean): SimEvent | null {
    const amount = this.money(m.topUp.toNumber() * (0.8 + 0.4 * this.rng.next()), 5)
    if (!joining && this.balances[m.agent].gte(m.topUp.times(this.params.members.topUpBelowShare))) return null
    return {
      at: this.start, kind: 'issuance', purpose: 'top-up', from: null, to: m.agent, amount, fee: this.zero, channel: null,
      reference: this.rng.chance(0.5) ? 'top-up at an exchange point' : 'top-up by bank transfer',
    }
  }

  /** An employer who pays staff partly in local pounds buys what its takings do not cover (sterling in). */
  private payrollTopUp (b: BusinessState): SimEvent | null {
    const need = b.wage!.times(b.staff.length).minus(this.balances[b.agent])
    if (need.lte(0)) return null
    return {
      at: this.start, kind: 'issuance', purpose: 'top-up', from: null, to: b.agent,
      amount: Money.max(need.toDecimalPlaces(this.decimals, Money.ROUND_UP), new Money(5)), fee: this.zero, channel: null,
      reference: 'local pounds bought for the payroll',
    }
  }

  private purchase (m: MemberState): SimEvent | null {
    const p = this.params
    const r = this.rng
    const sector = this.spendSectors.draw(r)
    const shops = this.shops.get(`${this.agents[m.agent].district}|${sector}`)
    if (shops == null || shops.empty) return null
    const shop = shops.draw(r)
    const price = this.money(r.logNormal(p.sectors.ticketMedian[sector], p.sectors.ticketSigma))
    // not enough local pounds: this purchase is paid in sterling instead (no movement)
    return this.payment('purchase', m.agent, shop, price, this.memberChannel(m), null)
  }

  private peer (m: MemberState, day: number): SimEvent | null {
    const p = this.params.members
    const r = this.rng
    const local = this.byDistrict.get(this.agents[m.agent].district) ?? []
    const friend = r.chance(p.peerSameDistrict) && local.length > 1 ? r.pick(local) : this.members[r.int(this.members.length)].agent
    if (this.agents[friend].joinDay > day) return null
    const amount = Money.min(this.money(r.logNormal(p.peerPaymentMedian, 0.7)), this.balances[m.agent].div(2).toDecimalPlaces(this.decimals, Money.ROUND_DOWN))
    if (amount.lt(1)) return null
    return this.payment('peer', m.agent, friend, amount, this.memberChannel(m), r.chance(0.5) ? 'thanks!' : 'share of the bill')
  }

  private supplierFor (buyer: number, weights: Partial<Record<SectorName, number>>): number | null {
    const sectors = SECTOR_NAMES.filter(s => (weights[s] ?? 0) > 0)
    if (sectors.length === 0) return null
    const sector = sectors[this.rng.weighted(sectors.map(s => weights[s]!))]
    const table = this.suppliers.get(`${this.agents[buyer].district}|${sector}`)
    if (table == null || table.empty) return null
    const s = table.draw(this.rng)
    return s === buyer ? null : s
  }

  private supplierOrder (b: BusinessState): SimEvent | null {
    const p = this.params.businesses
    const sector = this.agents[b.agent].sector!
    const supplier = this.supplierFor(b.agent, this.params.sectors.suppliers[sector])
    if (supplier == null) return null
    const cap = this.balances[b.agent].times(p.supplierOrderMaxShareOfBalance).toDecimalPlaces(this.decimals, Money.ROUND_DOWN)
    const amount = Money.min(this.money(this.rng.logNormal(p.supplierOrderMedian, 0.7)), cap)
    if (amount.lt(5)) return null
    return this.payment('supplier', b.agent, supplier, amount, this.businessChannel(), 'supplier invoice')
  }

  private councilSpend (): SimEvent | null {
    const c = this.params.council
    const supplier = this.supplierFor(this.council, c.suppliers)
    if (supplier == null) return null
    const amount = this.balances[this.council].times(c.monthlySpendShare / c.monthlyPayments).toDecimalPlaces(this.decimals, Money.ROUND_DOWN)
    if (amount.lt(5)) return null
    return this.payment('council', this.council, supplier, amount, 'online', 'council purchase order')
  }

  private redemption (agent: number, amount: Money): SimEvent | null {
    const fee = feeFor(amount, this.redemptionFee, this.decimals)
    if (amount.minus(fee).lte(0) || this.balances[agent].lt(amount)) return null
    return { at: this.start, kind: 'redemption', purpose: 'redemption', from: agent, to: null, amount, fee, channel: null, reference: 'redeemed to sterling' }
  }

  private redeem (b: BusinessState): SimEvent | null {
    const p = this.params.businesses
    const surplus = this.balances[b.agent].minus(b.float)
    // a behavioural rate, not an amount: the only place a fee becomes a JS number
    const chance = p.redeemChanceAtZeroFee * Math.exp(-p.redeemFeeSensitivity * this.redemptionFee.toNumber())
    if (surplus.lt(20) || !this.rng.chance(chance)) return null
    return this.redemption(b.agent, surplus.times(p.redeemShareOfSurplus).toDecimalPlaces(this.decimals, Money.ROUND_DOWN))
  }

  private councilRedeem (): SimEvent | null {
    const share = this.params.council.monthlyRedeemShare
    const amount = this.balances[this.council].times(share).toDecimalPlaces(this.decimals, Money.ROUND_DOWN)
    return amount.lt(20) ? null : this.redemption(this.council, amount)
  }
}
