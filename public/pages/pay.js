/* /pay/{id}: a payment request on a phone. Log in, see who asks how much and why, pay or decline with one tap;
 * the member's balance and recent statement below. The amount paid is the request's own (the API takes none). */
'use strict'
const { $, api, claims, gate, key } = window.Circulate
const requestId = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] ?? '')
// one key per page view: a double tap, or a retry after a dropped connection, replays the one payment
const payKey = key()
let account = null
let currency = ''

gate(async () => {
  await loadAccount()
  await loadRequest()
})

async function loadAccount () {
  const pid = claims()?.pid
  if (pid == null) { $('pay-error').textContent = 'Log in as a member or a business to pay.'; return }
  const p = await api(`/v1/participants/${encodeURIComponent(pid)}`)
  currency = p.currency
  account = p.accounts.find((a) => a.status === 'active') ?? p.accounts[0] ?? null
  if (account == null) return
  const from = new Date(Date.now() - 30 * 86400_000).toISOString()
  const s = await api(`/v1/accounts/${account.id}/statement?from=${encodeURIComponent(from)}&order=newest&limit=8`)
  // the balance and the statement change together, so the page never shows a balance its statement does not explain
  $('balance').textContent = `${account.balance} ${currency}`
  const list = $('statement')
  list.replaceChildren()
  for (const e of s.items) {
    const li = document.createElement('li')
    const what = document.createElement('span')
    what.textContent = `${new Date(e.createdAt).toLocaleDateString()} ${e.reference ?? e.kind}`
    const amount = document.createElement('span')
    amount.textContent = e.amount
    amount.className = e.amount.startsWith('-') ? 'out' : 'in'
    li.append(what, amount)
    list.append(li)
  }
  if (s.items.length === 0) {
    const li = document.createElement('li')
    li.textContent = 'Nothing in the last 30 days'
    list.append(li)
  }
  $('account-view').hidden = false
}

async function loadRequest () {
  try {
    render(await api(`/v1/payment-requests/${encodeURIComponent(requestId)}`))
  } catch (err) {
    $('pay-error').textContent = err.status === 404 ? 'This payment request does not exist, or is not for your currency.' : err.message
  }
}

function render (r) {
  $('request-view').hidden = false
  $('payee').textContent = r.payee.name
  $('amount').textContent = `${r.amount} ${r.currency}`
  $('reference').textContent = r.reference ?? ''
  const words = { pending: 'Waiting for your payment', paid: 'Paid', cancelled: 'Cancelled by the payee', declined: 'Declined', expired: 'Expired' }
  $('status').textContent = words[r.status] ?? r.status
  $('status').dataset.status = r.status
  $('expires').textContent = r.status === 'pending' ? `Pay before ${new Date(r.expiresAt).toLocaleTimeString()}` : ''
  const mine = account != null && r.toAccount === account.id
  $('actions').hidden = r.status !== 'pending' || account == null || mine
  $('pay').textContent = `Pay ${r.amount} ${r.currency}`
  // only the customer a request is addressed to may decline it; an open one is just left unpaid
  $('decline').hidden = r.fromAccount == null
}

async function act (path, init) {
  $('pay-error').textContent = ''
  $('pay').disabled = true
  $('decline').disabled = true
  try {
    await api(path, init)
  } catch (err) {
    $('pay-error').textContent = err.message
  } finally {
    $('pay').disabled = false
    $('decline').disabled = false
    await loadRequest()
    await loadAccount()
  }
}

$('pay').addEventListener('click', () => act(`/v1/payment-requests/${encodeURIComponent(requestId)}/payments`, {
  method: 'POST', headers: { 'idempotency-key': payKey }, body: { fromAccount: account.id, channel: 'app' },
}))
$('decline').addEventListener('click', () => act(`/v1/payment-requests/${encodeURIComponent(requestId)}/decline`, { method: 'POST' }))
