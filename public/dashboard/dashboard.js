/* Circulate dashboard: logs in with POST /v1/auth/token, then draws the circulation and flows reports with
 * Chart.js (served by the service from node_modules). Figures arrive as decimal strings; they become numbers only
 * to be drawn. CSV downloads are the API's own CSV of the reports shown (the service writes every CSV with its one
 * writer, which keeps any cell from reaching a spreadsheet as a formula): the page writes none itself. */
'use strict'

const $ = (id) => document.getElementById(id)
const TOKEN = 'circulate.dashboard.token'
const USER = 'circulate.dashboard.user'

/** Exposed for the browser test and the curious: the Chart instances and the last reports fetched. */
const state = { charts: {}, circulation: null, flows: {}, currency: null, shown: null, ready: false }
window.dashboard = state

const COLORS = ['#0d7a6f', '#e07a1f', '#3a6fb0', '#b0417a', '#7a9a2e', '#8a5cc2', '#c9a227', '#4aa3a3', '#a0522d', '#6b7b8c']

// Each chart names the public value it speaks to: what a funder, a council or a researcher reads from it.
const SERIES = [
  {
    id: 'supply', title: 'Money in circulation', unit: 'money',
    value: 'Every local pound is backed 1:1 by sterling held at the credit union: what is in circulation is money ' +
      'committed to the local economy; issued and redeemed show it coming in and going out.',
    sets: [
      { metric: 'supply', label: 'in circulation (end of period)', type: 'line' },
      { metric: 'issued', label: 'issued', type: 'bar' },
      { metric: 'redeemed', label: 'redeemed', type: 'bar' },
    ],
  },
  {
    id: 'velocity', title: 'Velocity', unit: 'times',
    value: 'How many times a year each local pound changes hands: more local trade for every pound of money.',
    sets: [{ metric: 'velocityAnnualised', label: 'payments per pound, annualised', type: 'line' }],
  },
  {
    id: 'respend', title: 'Re-spend rate', unit: 'share',
    value: 'Of what businesses take in local pounds, the share they spend on with other local people and firms ' +
      'rather than cash out: money that stays in the city.',
    sets: [
      { metric: 'respendRate', label: 're-spent by businesses', type: 'line' },
      { metric: 'redemptionRate', label: 'redeemed / issued, this period', type: 'line' },
      { metric: 'cumulativeRedemptionRate', label: 'redeemed / issued since the start', type: 'line' },
    ],
  },
  {
    id: 'mix', title: 'Who pays whom', unit: 'share', stacked: true,
    value: 'Business to business is local supply chains; business to member is wages paid in the currency; member ' +
      'to business is everyday spending on the high street.',
    sets: [
      { metric: 'm2bShare', label: 'member to business', type: 'bar' },
      { metric: 'b2bShare', label: 'business to business', type: 'bar' },
      { metric: 'b2mShare', label: 'business to member', type: 'bar' },
      { metric: 'm2mShare', label: 'member to member', type: 'bar' },
    ],
  },
  {
    id: 'locality', title: 'Locality', unit: 'share',
    value: 'Share of spending where payer and payee both sit in the local postcode areas: the local economy ' +
      'trading with itself.',
    sets: [{ metric: 'localityShare', label: 'local to local', type: 'line' }],
  },
  {
    id: 'active', title: 'Active accounts', unit: 'count', y2: 'share',
    value: 'Participation: how many members and businesses actually paid with the currency, and what share of ' +
      'those signed up.',
    sets: [
      { metric: 'activeAccounts', label: 'active accounts', type: 'bar' },
      { metric: 'activeShare', label: 'share of open accounts', type: 'line', axis: 'y2' },
    ],
  },
  {
    id: 'multiplier', title: 'Local multiplier and money that comes round', unit: 'times', y2: 'share',
    value: 'Local multiplier (an approximation of LM3): each pound members spend at local businesses generates this much ' +
      'local spending over three rounds. Circulating share: the part of all payments that actually came back round.',
    sets: [
      { metric: 'localMultiplier', label: 'local multiplier (≈ LM3)', type: 'line' },
      { metric: 'circulatingShare', label: 'circulating share', type: 'line', axis: 'y2' },
    ],
  },
  {
    id: 'holding', title: 'Holding time and dormant money', unit: 'days', y2: 'share',
    value: 'How long the money paid in each period had sat with its payer (traced through every account since ' +
      'the start), and the share of balances nobody has touched for more than 90 days: money that is not circulating.',
    sets: [
      { metric: 'holdingDays', label: 'mean holding time (days)', type: 'line' },
      { metric: 'medianHoldingDays', label: 'median holding time (days)', type: 'line' },
      { metric: 'dormantShare', label: 'dormant balances (90+ days)', type: 'bar', axis: 'y2' },
    ],
  },
  {
    id: 'holdingKinds', title: 'Holding time and dormant money: members and businesses', unit: 'days', y2: 'share',
    value: 'The same by who holds the money: how long members and businesses had held what they paid, and the ' +
      'share of each one\'s balances untouched for more than 90 days. A kind with too few accounts to publish is a gap.',
    sets: [
      { metric: 'holdingDaysMember', label: 'members: mean holding time (days)', type: 'line' },
      { metric: 'holdingDaysBusiness', label: 'businesses: mean holding time (days)', type: 'line' },
      { metric: 'dormantShareMember', label: 'members: dormant balances', type: 'bar', axis: 'y2' },
      { metric: 'dormantShareBusiness', label: 'businesses: dormant balances', type: 'bar', axis: 'y2' },
    ],
  },
  {
    id: 'concentration', title: 'Who holds the money', unit: 'share',
    value: 'Concentration of balances: a low Gini and top-10% share mean the money is spread across the community ' +
      'rather than sitting with a few.',
    sets: [
      { metric: 'gini', label: 'Gini of balances', type: 'line' },
      { metric: 'top10Share', label: 'held by the top 10%', type: 'line' },
    ],
  },
]

const TOTALS = [
  ['supply', 'in circulation at the end', 'money'], ['volume', 'payment volume', 'money'], ['count', 'payments', 'count'],
  ['velocityAnnualised', 'velocity a year', 'times'], ['respendRate', 're-spend rate', 'share'],
  ['localityShare', 'local to local', 'share'], ['b2bShare', 'business to business', 'share'],
  ['activeAccounts', 'active accounts', 'count'], ['localMultiplier', 'local multiplier', 'times'],
  ['holdingDays', 'holding time (days)', 'days'], ['dormantShare', 'dormant balances', 'share'],
]

// ---- helpers ---------------------------------------------------------------------------------------------------

function num (cell) {
  if (cell == null || cell.value == null) return null
  const n = Number(cell.value)
  return Number.isFinite(n) ? n : null
}

function fmt (v, unit) {
  if (v == null) return '–'
  if (unit === 'share') return `${(v * 100).toFixed(1)}%`
  if (unit === 'money') return v.toLocaleString('en-GB', { maximumFractionDigits: 0 })
  if (unit === 'times' || unit === 'days') return v.toLocaleString('en-GB', { maximumFractionDigits: unit === 'days' ? 1 : 2 })
  return v.toLocaleString('en-GB', { maximumFractionDigits: 0 })
}

function download (name, text) {
  const blob = new Blob([text], { type: 'text/csv' })
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = name
  document.body.appendChild(a)
  a.click()
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove() }, 1000)
}

function isoDay (d) { return d.toISOString().slice(0, 10) }

/** Today's date (YYYY-MM-DD) in an IANA time zone: a currency's reports cut its local days, so "today" is its
 *  local date, which the browser's clock in UTC (toISOString) gets wrong for hours each day. A zone this browser
 *  does not know, or none, falls back to the browser's own local date. */
function todayIn (zone) {
  const parts = (opts) => {
    const p = Object.fromEntries(new Intl.DateTimeFormat('en-CA', { ...opts, year: 'numeric', month: '2-digit', day: '2-digit' })
      .formatToParts(new Date()).map(x => [x.type, x.value]))
    return `${p.year}-${p.month}-${p.day}`
  }
  if (zone) {
    try { return parts({ timeZone: zone }) } catch (err) { /* RangeError: an unknown zone */ }
  }
  return parts({})
}

/** A date (YYYY-MM-DD) moved by n days, as calendar arithmetic (no clock, no zone). */
function addDays (day, n) {
  const [y, m, d] = day.split('-').map(Number)
  return isoDay(new Date(Date.UTC(y, m - 1, d + n)))
}

/** A JSON answer, or with text: true the answer's text (a CSV); a problem becomes an Error with its detail. */
async function api (path, init = {}, tries = 4) {
  const { text, ...options } = init
  const headers = { accept: text ? 'text/csv' : 'application/json', ...(options.headers || {}) }
  const token = sessionStorage.getItem(TOKEN)
  if (token != null) headers.authorization = `Bearer ${token}`
  const res = await fetch(path, { ...options, headers })
  // the service runs only a few reports per caller at once: wait as it says, then ask again
  if (res.status === 429 && tries > 1 && !path.endsWith('/auth/token')) {
    const wait = Math.min(Number(res.headers.get('retry-after')) || 1, 10)
    await new Promise(resolve => setTimeout(resolve, wait * 1000))
    return await api(path, init, tries - 1)
  }
  if (text && res.ok) return await res.text()
  const body = res.status === 204 ? null : await res.json().catch(() => null)
  if (res.status === 401 && token != null) { logout('Your session has ended; please log in again.'); throw new Error('logged out') }
  if (!res.ok) throw new Error((body && (body.detail || body.title)) || `${res.status} ${res.statusText}`)
  return body
}

// ---- login -----------------------------------------------------------------------------------------------------

function show (loggedIn) {
  $('login-view').hidden = loggedIn
  $('dashboard-view').hidden = !loggedIn
  $('who').hidden = !loggedIn
  $('who-name').textContent = loggedIn ? sessionStorage.getItem(USER) || '' : ''
}

function logout (message) {
  sessionStorage.removeItem(TOKEN)
  sessionStorage.removeItem(USER)
  show(false)
  $('login-error').textContent = message || ''
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  $('login-error').textContent = ''
  try {
    const r = await api('/v1/auth/token', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: $('username').value, password: $('password').value }),
    })
    sessionStorage.setItem(TOKEN, r.accessToken)
    sessionStorage.setItem(USER, $('username').value)
    $('password').value = ''
    show(true)
    await load()
  } catch (err) {
    $('login-error').textContent = err.message
  }
})
$('logout').addEventListener('click', () => logout())

// ---- reports ---------------------------------------------------------------------------------------------------

async function load () {
  state.ready = false
  document.body.dataset.state = 'loading'
  $('report-error').textContent = ''
  $('status').textContent = 'loading…'
  const code = $('currency').value
  const q = `from=${$('from').value}&to=${$('to').value}`
  const shown = { code, from: $('from').value, to: $('to').value, interval: $('interval').value }
  try {
    const [currency, circulation, bySector, byDistrict] = await Promise.all([
      api(`/v1/currencies/${encodeURIComponent(code)}`),
      api(`/v1/currencies/${encodeURIComponent(code)}/reports/circulation?${q}&interval=${$('interval').value}`),
      api(`/v1/currencies/${encodeURIComponent(code)}/reports/flows?by=sector&${q}`),
      api(`/v1/currencies/${encodeURIComponent(code)}/reports/flows?by=district&${q}`),
    ])
    Object.assign(state, { currency, circulation, flows: { sector: bySector, district: byDistrict }, shown })
    $('currency-name').textContent = `· ${currency.name}`
    render()
    $('status').textContent = `${circulation.periods.length} periods`
    state.ready = true
    document.body.dataset.state = 'ready'
  } catch (err) {
    $('status').textContent = ''
    $('report-error').textContent = err.message
    document.body.dataset.state = 'error'
  }
}

function card (id, title, value) {
  let el = document.getElementById(`chart-${id}`)
  if (el == null) {
    el = document.createElement('section')
    el.className = 'card chart'
    el.id = `chart-${id}`
    el.innerHTML = '<h3><span></span><button type="button">CSV</button></h3><p class="value"></p>' +
      '<div class="box"><canvas></canvas></div><p class="note"></p>'
    el.querySelector('button').addEventListener('click', () => downloadChart(id))
    $('charts').appendChild(el)
  }
  el.querySelector('h3 span').textContent = title
  el.querySelector('.value').textContent = value
  return el
}

function draw (id, el, config) {
  state.charts[id]?.destroy()
  state.charts[id] = new Chart(el.querySelector('canvas'), config)
}

function axis (unit) {
  return {
    beginAtZero: true,
    ticks: { callback: (v) => fmt(v, unit) },
  }
}

function render () {
  const c = state.circulation
  const labels = c.periods.map(p => p.start.slice(0, 10))

  $('totals').innerHTML = ''
  for (const [metric, label, unit] of TOTALS) {
    const cell = c.total.metrics[metric]
    const tile = document.createElement('div')
    tile.className = 'tile'
    tile.innerHTML = '<div class="v"></div><div class="k"></div>'
    tile.querySelector('.v').textContent = cell && cell.suppressed ? 'hidden' : fmt(num(cell), unit)
    tile.querySelector('.k').textContent = label
    $('totals').appendChild(tile)
  }

  for (const spec of SERIES) {
    const el = card(spec.id, spec.title, spec.value)
    let hidden = 0
    const datasets = spec.sets.map((s, i) => {
      const cells = c.periods.map(p => p.metrics[s.metric])
      hidden += cells.filter(x => x && x.suppressed).length
      return {
        label: s.label, type: s.type, data: cells.map(num),
        borderColor: COLORS[i], backgroundColor: s.type === 'bar' ? `${COLORS[i]}b0` : COLORS[i],
        yAxisID: s.axis || 'y', pointRadius: labels.length > 60 ? 0 : 2, borderWidth: 2, spanGaps: false,
        order: s.type === 'line' ? 0 : 1,
      }
    })
    const scales = { x: { stacked: !!spec.stacked, ticks: { maxTicksLimit: 12 } }, y: { ...axis(spec.unit), stacked: !!spec.stacked } }
    if (spec.stacked) scales.y.max = 1
    if (spec.y2) scales.y2 = { ...axis(spec.y2), position: 'right', grid: { drawOnChartArea: false } }
    draw(spec.id, el, {
      type: 'bar',
      data: { labels, datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, interaction: { mode: 'index', intersect: false },
        scales,
        plugins: {
          tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${fmt(ctx.parsed.y, ctx.dataset.yAxisID === 'y2' ? spec.y2 : spec.unit)}` } },
        },
      },
    })
    el.querySelector('.note').textContent = hidden > 0 ? `${hidden} figures hidden by the disclosure rules` : ''
  }

  renderSectorFlows()
  renderDistrictFlows()
}

function renderSectorFlows () {
  const f = state.flows.sector
  const el = card('sectors', 'Flows by sector',
    'Which parts of the local economy trade with each other: members\' spending by sector, and the supply chains ' +
    'between sectors (payer on the axis, payee by colour).')
  const groups = [...new Set(f.cells.flatMap(x => [x.payer, x.payee]))].sort()
  const total = (g) => f.cells.filter(x => x.payer === g).reduce((s, x) => s + (num(x.volume) || 0), 0)
  const payers = groups.filter(g => total(g) > 0).sort((a, b) => total(b) - total(a))
  const datasets = groups.map((payee, i) => {
    const cells = payers.map(payer => f.cells.find(x => x.payer === payer && x.payee === payee))
    return {
      label: payee, data: cells.map(x => x ? num(x.volume) : null),
      backgroundColor: COLORS[i % COLORS.length],
    }
  }).filter(d => d.data.some(v => v != null && v > 0))
  draw('sectors', el, {
    type: 'bar',
    data: { labels: payers, datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { x: { stacked: true }, y: { ...axis('money'), stacked: true } },
      plugins: { tooltip: { callbacks: { label: (ctx) => `to ${ctx.dataset.label}: ${fmt(ctx.parsed.y, 'money')}` } } },
    },
  })
  el.querySelector('.note').textContent = flowsNote(f)
}

// The flows report leaves out the cells its disclosure rules hide (docs/disclosure.md), and a researcher's range
// ends at the start of today: say both, so partial sums are read as such.
function flowsNote (f) {
  const to = f.to.slice(0, 10)
  const cut = to < $('to').value ? `; days before ${to} only (to a researcher, a day is published once it has ended)` : ''
  return `sums of the published cells only: cells the disclosure rules hide are left out${cut}`
}

function isLocal (district) {
  const areas = (state.currency && state.currency.localAreas) || []
  return areas.includes(district) || areas.includes(district.replace(/[0-9].*$/, ''))
}

function renderDistrictFlows () {
  const f = state.flows.district
  const el = card('districts', 'Flows by district',
    'Neighbourhood reach: where money paid from each postcode district goes — to the same neighbourhood, across ' +
    'the city, or out of the local area.')
  const kinds = ['same district', 'another local district', 'outside the local area']
  const byPayer = new Map()
  for (const x of f.cells) {
    const v = num(x.volume)
    if (v == null) continue
    const k = x.payer === x.payee ? 0 : isLocal(x.payee) ? 1 : 2
    const row = byPayer.get(x.payer) || [0, 0, 0]
    row[k] += v
    byPayer.set(x.payer, row)
  }
  const payers = [...byPayer.keys()].sort((a, b) => byPayer.get(b).reduce((s, v) => s + v, 0) - byPayer.get(a).reduce((s, v) => s + v, 0)).slice(0, 20)
  draw('districts', el, {
    type: 'bar',
    data: {
      labels: payers,
      datasets: kinds.map((k, i) => ({
        label: k, data: payers.map(p => byPayer.get(p)[i]),
        backgroundColor: COLORS[i],
      })),
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { x: { stacked: true }, y: { ...axis('money'), stacked: true } },
      plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${fmt(ctx.parsed.y, 'money')}` } } },
    },
  })
  el.querySelector('.note').textContent = flowsNote(f)
}

// ---- CSV -------------------------------------------------------------------------------------------------------

// A chart's CSV is the API's CSV of the report it is drawn from (the flows by sector or by district, or the
// circulation report for every other chart), for the currency, range and interval shown: the figures exactly as the
// API gives them, with the report's provenance, written by the service's CSV writer.
async function downloadReport (report) {
  const s = state.shown
  if (s == null) return
  const q = `from=${s.from}&to=${s.to}`
  const [path, name] = report === 'circulation'
    ? [`reports/circulation?${q}&interval=${s.interval}&format=csv`, `circulation-${s.interval}`]
    : [`reports/flows?by=${report}&${q}&format=csv`, `flows-${report}`]
  $('report-error').textContent = ''
  try {
    download(`${s.code}-${name}-${s.from}-${s.to}.csv`, await api(`/v1/currencies/${encodeURIComponent(s.code)}/${path}`, { text: true }))
  } catch (err) {
    $('report-error').textContent = err.message
  }
}

function downloadChart (id) {
  return downloadReport(id === 'sectors' ? 'sector' : id === 'districts' ? 'district' : 'circulation')
}

$('download-all').addEventListener('click', () => downloadReport('circulation'))

// ---- start -----------------------------------------------------------------------------------------------------

$('controls').addEventListener('submit', (ev) => { ev.preventDefault(); load() })

// The default range: the last year up to and including the selected currency's local today (`to` is the day
// after, as the reports take it). Set again when another currency is chosen, unless the dates were changed by hand.
const zones = new Map()
let defaults = null

function setDefaultRange () {
  if (defaults != null && ($('from').value !== defaults.from || $('to').value !== defaults.to)) return
  const today = todayIn(zones.get($('currency').value))
  defaults = { from: addDays(today, -365), to: addDays(today, 1) }
  $('from').value = defaults.from
  $('to').value = defaults.to
}

$('currency').addEventListener('change', setDefaultRange)

async function start () {
  try {
    const config = await api('/dashboard/config.json')
    for (const c of config.currencies) {
      const o = document.createElement('option')
      o.value = c.code
      o.textContent = `${c.code} · ${c.name}`
      zones.set(c.code, c.timeZone)
      $('currency').appendChild(o)
    }
  } catch (err) {
    $('login-error').textContent = err.message
  }
  setDefaultRange()
  if (sessionStorage.getItem(TOKEN) != null) { show(true); await load() } else show(false)
}
start()
