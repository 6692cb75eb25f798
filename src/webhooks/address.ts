import dns from 'node:dns'
import net from 'node:net'
import ipaddr from 'ipaddr.js'
import { MAX_URL_LENGTH } from '../schemas/webhooks.js'

// Where a webhook may be sent (SSRF): https (http only with WEBHOOK_ALLOW_HTTP=1), no credentials in the URL, and
// every address its host resolves to a public unicast address; private, loopback, link-local, carrier-grade NAT,
// multicast, reserved and unspecified ranges are refused unless WEBHOOK_ALLOW_PRIVATE=1. Checked at registration
// and again at every delivery, where the connection is made to the very addresses checked (lookupChecked), so a
// DNS answer that changes between check and connect (rebinding) cannot reach an inside address.
//
// Names are resolved with the DNS client in Node's event loop (c-ares), never with the system's getaddrinfo: that
// runs on the libuv thread pool, which lets at most two lookups run at once for the whole process. An endpoint
// whose name server never answers would hold both for the resolver's whole timeout (10 s with glibc's defaults),
// and every other lookup of the process (another business's endpoint, the database's host name) would wait
// behind it. With c-ares a slow name server delays only the lookups of its own names.

export interface AddressPolicy {
  allowHttp: boolean
  allowPrivate: boolean
  /** name servers to ask (ip or ip:port); the system's (resolv.conf) if absent */
  dnsServers?: string[]
  /** a query's first wait for an answer; c-ares asks twice, the second time waiting twice as long */
  dnsTimeoutMs?: number
}

/**
 * A URL refused. `message` is what its owner is told; `reason`, when given, is the specific cause for the service's
 * own log only (a host name's refusal tells its owner the same whatever the cause: see checkAddresses).
 */
export class UrlRefused extends Error {
  constructor (message: string, readonly reason?: string) { super(message) }
}

/**
 * What a host name's refusal says, whether the name does not resolve, its name server did not answer, or it
 * resolves to a refused address: the service's name servers answer inside its network, so telling these apart
 * would let whoever registers URLs map its internal names (which exist, and which of them point where).
 */
export const NAME_REFUSED = 'the url\'s host has no address this service may send to (it must resolve to public addresses only)'

/** Why this address may not be reached, or null. */
export function refusedAddress (address: string, policy: AddressPolicy): string | null {
  const range = refusedRange(address, policy)
  return range == null ? null : `${address} is ${range === 'invalid' ? 'not an IP address' : `in ${article(range)} ${range} range`}`
}

/** The range that keeps this address from being reached ('invalid': not an address), or null. */
function refusedRange (address: string, policy: AddressPolicy): string | null {
  if (!ipaddr.isValid(address)) return 'invalid'
  let ip = ipaddr.parse(address)
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address()
  let range: string = ip.range()
  // ::/96 (IPv4-compatible, deprecated by RFC 4291 2.5.5.1; ipaddr.js calls it unicast): some stacks carry it to
  // the embedded IPv4 address (::127.0.0.1 over a sit tunnel), and no public endpoint has such an address. The two
  // addresses of ::/96 that have ranges of their own are named by them: ::1 (loopback) and :: (unspecified).
  if (ip.kind() === 'ipv6' && range !== 'loopback' && range !== 'unspecified' &&
    (ip as ipaddr.IPv6).parts.slice(0, 6).every(p => p === 0)) range = 'IPv4-compatible'
  if (range === 'unicast') return null
  if (policy.allowPrivate) return null
  return range
}

/** Checks a webhook URL's form (not its addresses); returns the parsed URL. */
export function checkUrlForm (raw: string, policy: AddressPolicy): URL {
  let u: URL
  try { u = new URL(raw) } catch { throw new UrlRefused('the url is not a valid absolute URL') }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && policy.allowHttp)) {
    throw new UrlRefused(policy.allowHttp ? 'the url must be http or https' : 'the url must be https')
  }
  if (u.username !== '' || u.password !== '') throw new UrlRefused('the url must not carry credentials')
  if (u.hash !== '') throw new UrlRefused('the url must not have a fragment')
  if (u.hostname === '') throw new UrlRefused('the url has no host')
  // port 0 is no port a server listens on (Node would quietly send to the scheme's default port instead)
  if (u.port === '0') throw new UrlRefused('the url\'s port must be 1-65535')
  // the url is stored and sent as normalised, which percent-encodes (a euro sign becomes 9 characters)
  if (u.toString().length > MAX_URL_LENGTH) throw new UrlRefused(`the url is longer than ${MAX_URL_LENGTH} characters once percent-encoded`)
  return u
}

const hostOf = (u: URL) => u.hostname.replace(/^\[(.*)\]$/, '$1')

const DEFAULT_DNS_TIMEOUT_MS = 1500
const resolvers = new WeakMap<AddressPolicy, dns.promises.Resolver>()

/** Makes the policy's resolver now, so that a name server list it cannot use stops the start, not a delivery. */
export function checkResolver (policy: AddressPolicy): void {
  try { resolverOf(policy) } catch (err) { throw new Error(`WEBHOOK_DNS_SERVERS: ${(err as Error).message}`) }
}

function resolverOf (policy: AddressPolicy): dns.promises.Resolver {
  let r = resolvers.get(policy)
  if (r == null) {
    r = new dns.promises.Resolver({ timeout: policy.dnsTimeoutMs ?? DEFAULT_DNS_TIMEOUT_MS, tries: 2 })
    if (policy.dnsServers != null && policy.dnsServers.length > 0) r.setServers(policy.dnsServers)
    resolvers.set(policy, r)
  }
  return r
}

// the answers that say the name has no address, as opposed to a server that failed or did not answer
const NO_SUCH_NAME = new Set(['ENOTFOUND', 'ENODATA'])

/** The host's addresses (IPv4 first); throws with the resolver's code when it has none. */
async function resolveName (host: string, policy: AddressPolicy): Promise<dns.LookupAddress[]> {
  // RFC 6761, 6.3: localhost names are loopback, whatever a name server says (and a name server is not asked)
  if (host === 'localhost' || host.endsWith('.localhost')) return [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]
  const r = resolverOf(policy)
  const [v4, v6] = await Promise.allSettled([r.resolve4(host), r.resolve6(host)])
  const addrs = [
    ...(v4.status === 'fulfilled' ? v4.value.map(address => ({ address, family: 4 })) : []),
    ...(v6.status === 'fulfilled' ? v6.value.map(address => ({ address, family: 6 })) : []),
  ]
  if (addrs.length > 0) return addrs
  const definite = [v4, v6].every(x => x.status === 'fulfilled' || NO_SUCH_NAME.has((x.reason as NodeJS.ErrnoException).code ?? ''))
  // names only the hosts file knows (a receiver beside the service) are for deployments that allow private
  // addresses, the only ones such names could usefully point at; the system's lookup is asked only then, and
  // only after DNS has answered that the name does not exist
  if (definite && policy.allowPrivate) return await dns.promises.lookup(host, { all: true, verbatim: true })
  const codes = [v4, v6].map(x => (x.status === 'rejected' ? (x.reason as NodeJS.ErrnoException).code : undefined) ?? 'ENODATA')
  throw Object.assign(new Error(codes.includes('ETIMEOUT') ? 'its name server did not answer in time' : codes.join(', ')), { code: codes[0] })
}

/**
 * Resolves the host and checks every address. Throws UrlRefused: for an address written in the URL, naming its
 * range; for a host name, NAME_REFUSED whatever the cause, with the cause in `reason` for the log.
 */
export async function checkAddresses (u: URL, policy: AddressPolicy): Promise<dns.LookupAddress[]> {
  const host = hostOf(u)
  const literal = net.isIP(host) !== 0
  let addrs: dns.LookupAddress[]
  if (literal) addrs = [{ address: host, family: net.isIP(host) }]
  else {
    try {
      addrs = await resolveName(host, policy)
    } catch (err) {
      throw new UrlRefused(NAME_REFUSED, `${host} does not resolve (${(err as Error).message})`)
    }
  }
  if (addrs.length === 0) throw new UrlRefused(NAME_REFUSED, `${host} does not resolve`)
  for (const a of addrs) {
    // a name's refused address, and even its range, is not told: it is what the service's name servers answer
    // inside its network (an internal name's address, a cloud's metadata address), which whoever registers a URL
    // is not to learn; an address written in the URL is the caller's own, and is named
    const range = refusedRange(a.address, policy)
    if (range != null) {
      throw literal
        ? new UrlRefused(`the url's host resolves to a refused address: ${refusedAddress(a.address, policy)!}`)
        : new UrlRefused(NAME_REFUSED, `${host} resolves to a refused address: ${refusedAddress(a.address, policy)!}`)
    }
  }
  return addrs
}

/** A `lookup` for http(s).request: resolves, refuses if ANY address is refused, connects to the checked ones. */
export function lookupChecked (policy: AddressPolicy): net.LookupFunction {
  return (hostname, options, callback) => {
    const u = new URL(`http://${net.isIPv6(hostname) ? `[${hostname}]` : hostname}/`)
    checkAddresses(u, policy).then((addrs) => {
      if ((options as dns.LookupAllOptions).all === true) (callback as (e: null, a: dns.LookupAddress[]) => void)(null, addrs)
      else callback(null, addrs[0].address, addrs[0].family)
    }, (err: Error) => { callback(Object.assign(err, { code: 'EREFUSED' }) as NodeJS.ErrnoException, '', 0) })
  }
}

/** "an" before a range whose name is read with a vowel first (unspecified, IPv4-compatible), else "a". */
function article (range: string): string {
  return /^[aeiouAEIOU]/.test(range) ? 'an' : 'a'
}
