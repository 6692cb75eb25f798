import { call, pooled } from './http.js'
import { ISSUER } from './service.js'

// A currency with members to pay between, set up over HTTP on a running service, for the benches and the faults
// suite.

export interface Member { id: string, accountId: string, token: string }
export interface Economy { code: string, issuerToken: string, fees: string, members: Member[] }

/** A currency with Bristol-like fees and `n` members, each with a login token and `funds` issued to it. */
export async function seedEconomy (base: string, o: { code: string, members: number, funds: string }): Promise<Economy> {
  const login = async (username: string, password: string) => {
    for (let tries = 1; ; tries++) {
      const r = await call(base, 'POST', '/v1/auth/token', { body: { username, password } })
      // logins from one address are checked a few at a time (the login throttle): wait as told, as a client should
      if (r.status === 429 && tries < 10) { await new Promise(resolve => setTimeout(resolve, 1000 * Number(r.headers.get('retry-after') ?? 1))); continue }
      if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body.accessToken as string
    }
  }
  const issuerToken = await login(ISSUER.username, ISSUER.password)
  const cur = await call(base, 'POST', '/v1/currencies', {
    token: issuerToken,
    body: { code: o.code, name: `${o.code} Pound`, decimals: 2, fees: { text: '0.02', app: '0.02', online: '0.01', api: '0.01', till: '0.01' }, redemptionFee: '0.03', localAreas: ['BS'] },
  })
  if (cur.status !== 201) throw new Error(`currency: ${cur.status} ${JSON.stringify(cur.body)}`)
  const members = await pooled(Array.from({ length: o.members }, (_, i) => i), 8, async (i) => {
    const username = `${o.code.toLowerCase()}-m${i}`
    const r = await call(base, 'POST', `/v1/currencies/${o.code}/members`, {
      token: issuerToken, body: { name: `Member ${i}`, postcode: 'BS6 5AB', username, password: 'member-password' },
    })
    if (r.status !== 201) throw new Error(`member ${i}: ${r.status} ${JSON.stringify(r.body)}`)
    const iss = await call(base, 'POST', `/v1/currencies/${o.code}/issuances`, {
      token: issuerToken, key: `seed-${o.code}-${i}`, body: { toAccount: r.body.accountId, amount: o.funds, sterlingReference: `seed-${i}` },
    })
    if (iss.status !== 201) throw new Error(`issuance ${i}: ${iss.status} ${JSON.stringify(iss.body)}`)
    return { id: r.body.id as string, accountId: r.body.accountId as string, token: await login(username, 'member-password') }
  })
  return { code: o.code, issuerToken, fees: cur.body.systemAccounts.fees as string, members }
}
