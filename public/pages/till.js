/* /till: a business types an amount; the page asks for it (POST .../payment-requests), shows the QR code and the
 * link, and turns to "paid" with the payer's name the moment the payment commits: it long-polls the request
 * (GET /v1/payment-requests/{id}?waitSeconds=25), which the service answers on the commit's NOTIFY. */
'use strict'
const { $, api, claims, gate, key, sleep } = window.Circulate
let account = null
let currency = ''
let current = null

gate(async () => {
  const pid = claims()?.pid
  if (pid == null || claims()?.role !== 'business') { $('ask-error').textContent = 'Log in as a business to use the till.'; $('ask-view').hidden = false; return }
  const p = await api(`/v1/participants/${encodeURIComponent(pid)}`)
  currency = p.currency
  account = p.accounts.find((a) => a.status === 'active') ?? p.accounts[0]
  $('who-name').textContent = p.name
  $('currency').textContent = currency
  $('ask-view').hidden = false
  $('ask-amount').focus()
})

$('ask-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  $('ask-error').textContent = ''
  const body = { toAccount: account.id, amount: $('ask-amount').value.trim() }
  const reference = $('ask-reference').value.trim()
  if (reference !== '') body.reference = reference
  try {
    const r = await api(`/v1/currencies/${encodeURIComponent(currency)}/payment-requests`, { method: 'POST', headers: { 'idempotency-key': key() }, body })
    await show(r)
  } catch (err) {
    $('ask-error').textContent = err.message
  }
})

async function show (r) {
  current = r.id
  document.body.classList.remove('paid')
  $('ask-view').hidden = true
  $('request-view').hidden = false
  $('cancel').hidden = false
  $('next').hidden = true
  $('paid-by').textContent = ''
  $('amount').textContent = `${r.amount} ${r.currency}`
  $('reference').textContent = r.reference ?? ''
  $('pay-link').href = r.payUrl
  $('pay-link').textContent = r.payUrl
  // the QR code as SVG from the API (with the bearer token), put in the page as an element: no image host needed
  const svg = await api(`/v1/payment-requests/${r.id}/qr.svg`, { headers: { accept: 'image/svg+xml' } })
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml')
  $('qr').replaceChildren(document.importNode(doc.documentElement, true))
  render(r)
  void watch(r.id)
}

function render (r) {
  const words = { pending: 'Waiting for payment…', paid: 'Paid', cancelled: 'Cancelled', declined: 'Declined by the customer', expired: 'Expired' }
  $('status').textContent = words[r.status] ?? r.status
  $('status').dataset.status = r.status
  if (r.status === 'paid') {
    document.body.classList.add('paid')
    $('paid-by').textContent = r.payer != null ? `by ${r.payer.name}` : ''
  }
  if (r.status !== 'pending') { $('cancel').hidden = true; $('next').hidden = false }
}

async function watch (id) {
  while (current === id) {
    try {
      const r = await api(`/v1/payment-requests/${id}?waitSeconds=25`)
      if (current !== id) return
      render(r)
      if (r.status !== 'pending') return
    } catch (err) {
      if (err.status === 401) return
      await sleep(1000)
    }
  }
}

$('cancel').addEventListener('click', async () => {
  if (current == null) return
  try { render(await api(`/v1/payment-requests/${current}/cancel`, { method: 'POST' })) } catch (err) { $('status').textContent = err.message }
})
$('next').addEventListener('click', () => {
  current = null
  $('request-view').hidden = true
  $('ask-view').hidden = false
  $('ask-amount').value = ''
  $('ask-reference').value = ''
  $('ask-amount').focus()
})
