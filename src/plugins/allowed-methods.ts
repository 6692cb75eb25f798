import FindMyWay from 'find-my-way'

// Which methods a path has, for the not-found handler (plugins/problem.ts). Fastify answers a method a path does
// not have as it answers a path that does not exist: 404. HTTP (RFC 9110, 15.5.6) has 405 for it, with an Allow
// header naming the methods the resource does have, so a client that sent GET to a POST-only route is told its
// mistake rather than that the route is missing. Fastify does not say which methods a path has, so every route
// is also put in a router of its own, find-my-way (the router Fastify itself is built on, with the same options),
// which is asked only when Fastify's found nothing.

/** The methods the service's routes use; anything else (OPTIONS, TRACE, ...) is never among a path's methods. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
type Method = typeof METHODS[number]

export interface AllowedMethods {
  /** a route, as Fastify's onRoute hook sees it */
  add: (method: string | string[], url: string) => void
  /** the methods a path (no query) has, in METHODS' order: empty when it has none */
  of: (path: string) => string[]
}

/** Fastify's router options (app.ts, serverOptions), here so that this router takes them too: a path matches
 *  here exactly when it would match there. */
export const ROUTER_OPTIONS = { maxParamLength: 200, ignoreTrailingSlash: true }

export function allowedMethods (): AllowedMethods {
  const router = FindMyWay({ ...ROUTER_OPTIONS })
  const added = new Set<string>()
  const noop = () => {}
  return {
    add (method, url) {
      for (const m of [method].flat()) {
        // once each: the HEAD route Fastify adds beside a GET one comes here too, and a route added twice throws
        if (!(METHODS as readonly string[]).includes(m) || added.has(`${m} ${url}`)) continue
        added.add(`${m} ${url}`)
        router.on(m as Method, url, noop)
      }
    },
    of: (path) => METHODS.filter(m => router.find(m, path) != null),
  }
}
