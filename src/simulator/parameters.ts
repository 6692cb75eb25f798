// Every parameter of the simulated economy, in one file, each with where it comes from. A researcher asks
// "what if ...?" by changing a value here (or with `npm run simulate -- --set path=value`), simulating into a
// new currency code, and comparing the two currencies' circulation reports.
//
// Sources:
//   [P] the scheme this simulator models, a Bristol Pound-style currency, as the project describes it: about 1,400 personal and 620 business accounts, 80,000
//       digital transactions in the first five years, a peak of about 1 million local pounds in circulation;
//       fees of 2% (text, app) and 1% (online) paid by the receiver; 3% to redeem; business rates and some
//       salaries payable in the currency.
//   [G] Bristol's geography: postcode districts BS1-BS16 make up the city; BS20 (Portishead), BS31 (Keynsham),
//       BS48 (Nailsea) and BA1 (Bath) lie outside it. Centroids are rough (to about a kilometre), in km east and
//       north of the city centre.
//   [A] An assumption of this model, chosen so that the totals land on [P]: no per-person data on the Bristol
//       Pound was published. Each says which total it was tuned against.
//
// The calibration targets at full scale (1,400 members, 620 businesses, 365 days), checked by
// test/simulator/simulator.test.ts at a small scale and printed by `npm run simulate`:
//   - tens of thousands of payments a year ([P]: 80,000 digital transactions in five years, i.e. 16,000 a year
//     on average over a growing scheme; a mature year is well above the average);
//   - currency in circulation growing through the year to about 1 million at its end (the peak) ([P]).

export const SECTOR_NAMES = ['food', 'cafes-pubs', 'retail', 'services', 'trades', 'arts', 'health'] as const
export type SectorName = typeof SECTOR_NAMES[number]
type PerSector = Record<SectorName, number>

export interface District {
  /** km east of the city centre [G] */
  x: number
  /** km north of the city centre [G] */
  y: number
  /** relative share of the members who live here [A: uptake was strongest in BS3, BS5, BS6, BS7] */
  members: number
  /** relative share of the businesses here [A: city centre, Stokes Croft, Gloucester Road, North Street, Clifton] */
  businesses: number
  /** a street name used to make plausible trading names */
  street: string
  /** an example inward code ("5AB"), so every postcode parses */
  inward: string
}

export interface SimulationParameters {
  scale: {
    /** Members (personal accounts) at full scale [P: about 1,400]. */
    members: number
    /** Business accounts at full scale, the council included [P: about 620]. */
    businesses: number
    /** Length of the simulated period in days: a year. */
    days: number
  }

  currency: {
    code: string
    name: string
    decimals: number
    /** Receiver's fee by channel [P: 2% text and app, 1% online; API and till as online, an assumption]. */
    fees: { text: string, app: string, online: string, api: string, till: string }
    /** Withheld when a business redeems to sterling [P: 3%]. */
    redemptionFee: string
    /** Postcode districts that count as local: the city's districts [G]. */
    localAreas: string[]
    /** IANA time zone whose local days, weeks and months the reports use [G: Bristol keeps UK time]. */
    timeZone: string
  }

  /** Postcode districts, local and not [G], with where members and businesses live [A]. */
  districts: Record<string, District>

  sectors: {
    /** Share of the businesses in each sector [A: a high-street mix, cafes and shops the most common]. */
    businessShare: PerSector
    /** Share of members' purchases made in each sector [A: everyday spending, food and cafes first]. */
    memberSpendShare: PerSector
    /** Median price of a member's purchase in each sector, in currency units [A: UK high-street prices]. */
    ticketMedian: PerSector
    /** Spread of purchase prices (sigma of the log-normal) [A]. */
    ticketSigma: number
    /** For a business of each sector, which sectors it buys from (relative weights) [A: food and cafes buy food
     *  and services; trades buy from trades and retail; and so on]. */
    suppliers: Record<SectorName, Partial<PerSector>>
  }

  members: {
    /** Share of members already in the scheme on day one; the others join evenly over the year [A: a growing
     *  scheme; tuned with topUp* so that circulation reaches about 1 million at the end of the year]. */
    initialShare: number
    /** Median top-up at an exchange point or by bank transfer (issuance), in currency units [A]. */
    topUpMedian: number
    topUpSigma: number
    /** Days between a member's top-ups: each member gets a fixed rhythm between these bounds [A: about monthly,
     *  around pay day]. */
    topUpEveryMinDays: number
    topUpEveryMaxDays: number
    /** On their day, a member tops up only if their balance has fallen below this share of their usual top-up
     *  [A: people refill a wallet rather than pile money up]. */
    topUpBelowShare: number
    /** Median purchases per member per day, and the spread between members: a few enthusiasts pay in the
     *  currency almost daily, most a few times a month [A: tuned to tens of thousands of payments a year]. */
    purchasesPerDayMedian: number
    purchasesPerDaySigma: number
    /** How far members go to spend: a business's pull falls by e (2.7x) every this many km [A]. */
    distanceDecayKm: number
    /** Extra pull of the city centre (BS1) on shoppers from everywhere [A]. */
    cityCentrePull: number
    /** Chance per member per day of paying another member (a shared bill, a favour) [A: a small share of V]. */
    peerPaymentPerDay: number
    peerPaymentMedian: number
    /** Share of peer payments that go to someone in the same district [A]. */
    peerSameDistrict: number
    /** How members pay businesses (relative weights) [A: app and text were the electronic channels of [P]]. */
    channels: { app: number, text: number, online: number }
  }

  businesses: {
    /** Spread of businesses' popularity (sigma of a log-normal with median 1): a few take most of the trade [A]. */
    popularitySigma: number
    /** Share of businesses that are independent (not chains) [A: the scheme signed up independents]. */
    independentShare: number
    /** Chance that a business places supplier orders in a given week, and how many [A: tuned so that B2B is
     *  roughly a fifth to a third of the volume]. */
    supplierWeekChance: number
    supplierOrdersMax: number
    /** Median supplier order, in currency units, and never more than this share of the buyer's balance [A]. */
    supplierOrderMedian: number
    supplierOrderMaxShareOfBalance: number
    /** Suppliers are chosen over a wider area than shops [A]. */
    supplierDistanceDecayKm: number
    /** Share of businesses that pay part of their staff's wages in the currency, staff per such business, and
     *  the monthly amount per employee [P: some employers paid part of salaries; amounts A]. */
    wagePayerShare: number
    staffMax: number
    wageMedian: number
    /** Share of businesses that pay their business rates in the currency, and the monthly instalment of a
     *  business of median popularity [P: rates could be paid in the currency; A: ten monthly instalments, April to
     *  January, as UK councils bill; only the busier half pays (small business rate relief), scaled by size]. */
    ratesPayerShare: number
    ratesInstalmentMedian: number
    /** Balance a business keeps for trading before it thinks of redeeming (median, spread) [A]. */
    floatMedian: number
    floatSigma: number
    /** At the end of each month, the chance that a business redeems, if the redemption fee were zero; a fee
     *  lowers it by exp(-feeSensitivity x fee). [A: no elasticity was published; with the 3% fee this gives a
     *  chance of about 0.27. The fee is what keeps money circulating: this is the lever of the what-if example.] */
    redeemChanceAtZeroFee: number
    redeemFeeSensitivity: number
    /** Share of the balance above the float that a redeeming business takes out [A]. */
    redeemShareOfSurplus: number
    /** How businesses pay each other, staff and the council (relative weights) [A: accounting tools and web]. */
    channels: { online: number, api: number }
  }

  council: {
    /** The council is a participant like a business (it receives rates and buys locally). */
    name: string
    postcode: string
    /** Share of its balance the council spends with local businesses each month (procurement, grants) [A]. */
    monthlySpendShare: number
    /** Payments that spending is split into each month [A]. */
    monthlyPayments: number
    /** Sectors it buys from [A]. */
    suppliers: Partial<PerSector>
    /** Share of its balance the council redeems to sterling each month [A]. */
    monthlyRedeemShare: number
  }

  calendar: {
    /** Relative activity by weekday, Sunday first [A: busier Saturdays]. */
    weekday: [number, number, number, number, number, number, number]
    /** Relative activity by month, January first [A: quiet January, busy December]. */
    month: [number, number, number, number, number, number, number, number, number, number, number, number]
  }
}

export const DEFAULT_PARAMETERS: SimulationParameters = {
  scale: { members: 1400, businesses: 620, days: 365 },

  currency: {
    code: 'BRS',
    name: 'Bristol Pound',
    decimals: 2,
    fees: { text: '0.02', app: '0.02', online: '0.01', api: '0.01', till: '0.01' },
    redemptionFee: '0.03',
    localAreas: ['BS1', 'BS2', 'BS3', 'BS4', 'BS5', 'BS6', 'BS7', 'BS8', 'BS9', 'BS10', 'BS11', 'BS13', 'BS14', 'BS15', 'BS16'],
    timeZone: 'Europe/London',
  },

  districts: {
    BS1: { x: 0, y: 0, members: 3, businesses: 20, street: 'Corn Street', inward: '1JQ' },
    BS2: { x: 1.2, y: 0.8, members: 5, businesses: 8, street: 'Stokes Croft', inward: '8HP' },
    BS3: { x: -0.6, y: -1.6, members: 12, businesses: 11, street: 'North Street', inward: '1HT' },
    BS4: { x: 2.2, y: -2.2, members: 5, businesses: 3, street: 'Wells Road', inward: '2AG' },
    BS5: { x: 2.6, y: 0.8, members: 11, businesses: 8, street: 'St Marks Road', inward: '6JH' },
    BS6: { x: -0.3, y: 2.0, members: 14, businesses: 11, street: 'Cotham Hill', inward: '6HR' },
    BS7: { x: 0.4, y: 3.3, members: 13, businesses: 11, street: 'Gloucester Road', inward: '8AE' },
    BS8: { x: -1.9, y: 0.6, members: 8, businesses: 9, street: 'Princess Victoria Street', inward: '4BY' },
    BS9: { x: -2.3, y: 4.1, members: 5, businesses: 2, street: 'Westbury Hill', inward: '3AA' },
    BS10: { x: -1.1, y: 6.0, members: 2, businesses: 1, street: 'Crow Lane', inward: '7QR' },
    BS11: { x: -6.0, y: 4.6, members: 2, businesses: 2, street: 'High Street Shirehampton', inward: '0DP' },
    BS13: { x: -1.6, y: -4.6, members: 2, businesses: 1, street: 'Church Road', inward: '8AJ' },
    BS14: { x: 1.6, y: -5.0, members: 2, businesses: 1, street: 'Stockwood Road', inward: '8PL' },
    BS15: { x: 5.0, y: 1.1, members: 3, businesses: 2, street: 'Regent Street', inward: '8JX' },
    BS16: { x: 3.6, y: 3.1, members: 6, businesses: 3, street: 'Fishponds Road', inward: '3UH' },
    // outside the local area: commuters, friends and suppliers of the scheme
    BS20: { x: -11, y: 6, members: 1.5, businesses: 1.5, street: 'High Street Portishead', inward: '6AA' },
    BS31: { x: 6, y: -6, members: 1.5, businesses: 1, street: 'Temple Street', inward: '1HA' },
    BS48: { x: -11, y: -3, members: 1, businesses: 0.5, street: 'High Street Nailsea', inward: '1BW' },
    BA1: { x: 17, y: -10, members: 1, businesses: 1.5, street: 'Walcot Street', inward: '5BG' },
  },

  sectors: {
    businessShare: { food: 14, 'cafes-pubs': 24, retail: 22, services: 16, trades: 8, arts: 9, health: 7 },
    memberSpendShare: { food: 30, 'cafes-pubs': 30, retail: 16, services: 8, trades: 3, arts: 7, health: 6 },
    ticketMedian: { food: 22, 'cafes-pubs': 12, retail: 28, services: 38, trades: 110, arts: 16, health: 32 },
    ticketSigma: 0.6,
    suppliers: {
      food: { food: 6, services: 2, trades: 1, retail: 1 },
      'cafes-pubs': { food: 6, services: 1.5, trades: 1, retail: 1, arts: 0.5 },
      retail: { retail: 4, services: 3, trades: 2, food: 1 },
      services: { services: 5, retail: 2, trades: 2, 'cafes-pubs': 1 },
      trades: { trades: 4, retail: 3, services: 3 },
      arts: { arts: 3, services: 3, retail: 2, 'cafes-pubs': 2 },
      health: { services: 4, retail: 3, health: 2, food: 1 },
    },
  },

  members: {
    initialShare: 0.6,
    topUpMedian: 150,
    topUpSigma: 0.5,
    topUpEveryMinDays: 21,
    topUpEveryMaxDays: 42,
    topUpBelowShare: 1,
    purchasesPerDayMedian: 0.06,
    purchasesPerDaySigma: 0.8,
    distanceDecayKm: 2.5,
    cityCentrePull: 1.5,
    peerPaymentPerDay: 0.004,
    peerPaymentMedian: 20,
    peerSameDistrict: 0.7,
    channels: { app: 55, text: 35, online: 10 },
  },

  businesses: {
    popularitySigma: 0.9,
    independentShare: 0.9,
    supplierWeekChance: 0.12,
    supplierOrdersMax: 2,
    supplierOrderMedian: 120,
    supplierOrderMaxShareOfBalance: 0.4,
    supplierDistanceDecayKm: 6,
    wagePayerShare: 0.1,
    staffMax: 4,
    wageMedian: 180,
    ratesPayerShare: 0.15,
    ratesInstalmentMedian: 160,
    floatMedian: 300,
    floatSigma: 0.6,
    redeemChanceAtZeroFee: 0.5,
    redeemFeeSensitivity: 20,
    redeemShareOfSurplus: 0.6,
    channels: { online: 70, api: 30 },
  },

  council: {
    name: 'Bristol City Council',
    postcode: 'BS1 5TR',
    monthlySpendShare: 0.3,
    monthlyPayments: 8,
    suppliers: { trades: 3, services: 3, arts: 2, food: 1, 'cafes-pubs': 1 },
    monthlyRedeemShare: 0.2,
  },

  calendar: {
    weekday: [0.75, 0.95, 0.95, 1, 1.05, 1.15, 1.35],
    month: [0.8, 0.85, 0.95, 1, 1, 1.05, 1.05, 1, 1, 1, 1.05, 1.3],
  },
}

/**
 * A copy of the parameters with overrides applied, given as dotted paths ("currency.redemptionFee=0",
 * "members.topUpMedian=150"). Unknown paths and values of the wrong type are refused, so a typo in a what-if
 * run fails loudly instead of silently simulating the default.
 */
export function withOverrides (base: SimulationParameters, overrides: Record<string, string>): SimulationParameters {
  const copy = structuredClone(base)
  for (const [dotted, raw] of Object.entries(overrides)) {
    const keys = dotted.split('.')
    let node: Record<string, unknown> = copy as unknown as Record<string, unknown>
    for (const k of keys.slice(0, -1)) {
      const next = node[k]
      if (next == null || typeof next !== 'object') throw new Error(`unknown parameter ${dotted}`)
      node = next as Record<string, unknown>
    }
    const last = keys.at(-1)!
    if (!(last in node)) throw new Error(`unknown parameter ${dotted}`)
    const current = node[last]
    if (typeof current === 'number') {
      const v = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(v)) throw new Error(`parameter ${dotted} must be a number, got ${raw}`)
      node[last] = v
    } else if (typeof current === 'string') {
      node[last] = raw
    } else if (Array.isArray(current)) {
      node[last] = raw.split(',').map(s => s.trim()).filter(s => s !== '')
    } else {
      throw new Error(`parameter ${dotted} is a group; set one of its fields`)
    }
  }
  return copy
}
