/* Shared by /pay and /till: login with POST /v1/auth/token, the token in sessionStorage (this tab only), fetch
 * with the bearer token, problem details shown as their detail. Everything is same-origin; no other host. */
'use strict'
window.Circulate = (() => {
  const TOKEN = 'circulate.pages.token'
  const $ = (id) => document.getElementById(id)
  const token = () => sessionStorage.getItem(TOKEN)
  /** The token's claims (not verified here: the API verifies it on every call). */
  const claims = () => {
    const t = token()
    if (t == null) return null
    try { return JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) } catch { return null }
  }
  class ApiError extends Error {
    constructor (status, problem) { super(problem?.detail ?? `request failed (${status})`); this.status = status; this.problem = problem }
  }
  async function api (path, init = {}) {
    const headers = { accept: 'application/json', ...(init.headers ?? {}) }
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    const t = token()
    if (t != null) headers.authorization = `Bearer ${t}`
    const res = await fetch(path, { ...init, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) })
    const type = res.headers.get('content-type') ?? ''
    const body = type.includes('json') ? await res.json() : await res.text()
    if (res.status === 401 && t != null && !path.endsWith('/auth/token')) { logout(); throw new ApiError(401, body) }
    if (!res.ok) throw new ApiError(res.status, typeof body === 'object' ? body : null)
    return body
  }
  async function login (username, password) {
    const r = await api('/v1/auth/token', { method: 'POST', body: { username, password } })
    sessionStorage.setItem(TOKEN, r.accessToken)
  }
  function logout () { sessionStorage.removeItem(TOKEN); location.reload() }
  /** Wires the login form; calls onIn once logged in (now, or after the form). */
  function gate (onIn) {
    $('logout').addEventListener('click', logout)
    $('login-form').addEventListener('submit', async (e) => {
      e.preventDefault()
      $('login-error').textContent = ''
      try {
        await login($('username').value, $('password').value)
        $('login-view').hidden = true
        await start()
      } catch (err) { $('login-error').textContent = err.message }
    })
    const start = async () => {
      $('who').hidden = false
      $('who-name').textContent = claims()?.usr ?? ''
      await onIn()
    }
    if (token() == null) $('login-view').hidden = false
    else start().catch((err) => { console.error(err) })
  }
  const key = () => (crypto.randomUUID != null ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`)
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  return { $, api, claims, gate, key, sleep, ApiError }
})()
