import type { DemoCredentials, DemoLogins } from './credentials.js'
import type { DemoState } from './seed.js'

// What `npm start` prints for the person who just ran it: plain text, not JSON log lines.

export function banner (o: {
  base: string, dataDir: string | null, issuer: DemoCredentials | null, logins: DemoLogins | null, state: DemoState | null
  /** the simulated year is being loaded by this start */
  loading?: boolean
}): string {
  const lines = [
    '',
    `Circulate is serving on ${o.base}${o.dataDir != null ? ` (embedded PostgreSQL, data in ${o.dataDir})` : ''}`,
    `  API:        ${o.base}/v1/...  (health: ${o.base}/health)`,
    `  API docs:   ${o.base}/docs`,
    `  Dashboard:  ${o.base}/dashboard`,
  ]
  const row = (role: string, c: DemoCredentials, what: string) =>
    `    ${role.padEnd(17)} ${`${c.username} / ${c.password}`.padEnd(36)} ${what}`
  if (o.issuer != null || o.logins != null) {
    lines.push('  Demo logins (random passwords, kept in the data folder):')
    if (o.issuer != null) lines.push(row('platform issuer', o.issuer, 'creates currencies; acts for all; dashboard'))
    if (o.logins != null) {
      const code = o.state?.currency ?? 'currency'
      lines.push(row(`${code} issuer`, o.logins.currencyIssuer, 'issues, redeems, reverses; dashboard'))
      lines.push(row('researcher', o.logins.researcher, 'reports and exports; dashboard'))
      lines.push(row('member', o.logins.member, o.state?.member ?? ''))
      lines.push(row('business', o.logins.business, o.state?.business ?? ''))
    }
  }
  if (o.loading === true && o.state != null) {
    lines.push(`  The simulated year of ${o.state.currency} is loading (${o.state.total} movements); the dashboard fills up as it goes.`)
  } else if (o.state?.status === 'loading') {
    lines.push(`  The simulated year of ${o.state.currency} was interrupted after ${o.state.posted} of ${o.state.total} movements;` +
      ' to load it again, stop and delete the data folder.')
  }
  return lines.join('\n') + '\n'
}
