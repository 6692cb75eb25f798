import { LruMap } from 'toad-cache'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { auditRecord, type RequestMeta } from '../domain/access.js'
import { DomainError } from '../domain/errors.js'
import { Money, parseRate } from '../domain/money.js'
import { parseLocalAreas } from '../domain/postcode.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { currencyRepo, type CurrencyWithSystem } from '../repositories/currency.repo.js'
import type { LedgerCurrency } from '../domain/movements.js'
import type { Channel, CurrencyCreate, CurrencyUpdate } from '../schemas/ledger.js'
import { badZone, calendarOf, knownToIntl, type Calendar } from '../domain/zone.js'

/** What the write path needs of a currency, resolved once and cached (a currency's id, decimals and system
 *  accounts never change; fees are re-read when the cache entry expires; the time zone, until the currency's first
 *  transfer fixes it, on every resolve). */
export interface CurrencyInfo extends LedgerCurrency {
  code: string
  localAreas: string[]
  /** its time zone's calendar: reports cut its days, weeks and months there */
  calendar: Calendar
}

const CACHE_MS = 30_000
/** currencies remembered at once; past it the least recently used goes (a deployment has a handful) */
const CACHE_MAX = 1_000

/** The backing currency: an ISO 4217 code the runtime knows (the schema checks only its shape, three capitals). */
function backingOf (code: string): string {
  if (Intl.supportedValuesOf('currency').includes(code)) return code
  const detail = `${JSON.stringify(code)} is not an ISO 4217 currency code (e.g. "GBP", "EUR")`
  throw new DomainError('VALIDATION_FAILED', `backing ${detail}`, [{ pointer: '/backing', detail }])
}

export function currencyService (prisma: PrismaClient) {
  const repo = currencyRepo(prisma)
  // toad-cache (fastify's own router cache): bounded, and an entry is read again once it is CACHE_MS old.
  // zoneFixed: the currency had a transfer when its zone was read, so the zone can no longer change. Until then any
  // instance may change it (PATCH), and this one would cut the days of the first transfers' reports in the old zone
  // (the database cuts their buckets in the new one), so it is read again on every resolve.
  const cache = new LruMap<{ info: CurrencyInfo, zoneFixed: boolean }>(CACHE_MAX, CACHE_MS)
  // id -> code, which never changes, so no expiry: resolveId goes through resolve and its expiry
  const codes = new LruMap<string>(CACHE_MAX)

  const toInfo = (c: CurrencyWithSystem): CurrencyInfo => {
    const sys = Object.fromEntries(c.accounts.map(a => [a.systemKind, a.id])) as CurrencyInfo['system']
    return {
      id: c.id, code: c.code, decimals: c.decimals,
      fees: {
        text: new Money(c.feeText.toString()), app: new Money(c.feeApp.toString()), online: new Money(c.feeOnline.toString()),
        api: new Money(c.feeApi.toString()), till: new Money(c.feeTill.toString()),
      },
      redemptionFee: new Money(c.redemptionFee.toString()),
      localAreas: c.localAreas,
      calendar: calendarOf(c.timeZone),
      system: sys,
    }
  }

  const view = (c: CurrencyWithSystem) => {
    const info = toInfo(c)
    return {
      code: c.code, name: c.name, backing: c.backing, decimals: c.decimals,
      fees: Object.fromEntries(Object.entries(info.fees).map(([k, v]) => [k, v.toFixed()])) as Record<Channel, string>,
      redemptionFee: info.redemptionFee.toFixed(),
      localAreas: c.localAreas,
      timeZone: c.timeZone,
      systemAccounts: info.system,
      createdAt: c.createdAt.toISOString(),
    }
  }

  /** An IANA zone both PostgreSQL and this runtime know, under exactly the name PostgreSQL lists. PostgreSQL reads a
   *  name that is also a time zone abbreviation (CET, EET, MET, WET, ...) as that abbreviation, a fixed offset,
   *  where the zone and this runtime keep summer time: its buckets and the reports' periods would be cut an hour
   *  apart, so such names are refused (UTC means the same either way). */
  const checkZone = async (zone: string): Promise<string> => {
    if (!knownToIntl(zone)) throw badZone(zone)
    const known = await prisma.$queryRaw<Array<{ abbrev: boolean }>>`
      SELECT EXISTS (SELECT 1 FROM pg_timezone_abbrevs WHERE lower(abbrev) = lower(${zone})) AS abbrev FROM pg_timezone_names WHERE name = ${zone}`
    if (known.length === 0) throw badZone(zone)
    if (known[0].abbrev && zone !== 'UTC') {
      throw badZone(zone, 'PostgreSQL reads it as a fixed-offset abbreviation: name the zone by a place instead (e.g. "Europe/Paris" for CET)')
    }
    return zone
  }

  return {
    /** Resolves a currency code (case-insensitive) or answers 404. */
    async resolve (code: string): Promise<CurrencyInfo> {
      const key = code.toUpperCase()
      const hit = cache.get(key)
      if (hit != null) {
        if (hit.zoneFixed) return hit.info
        // one statement, one snapshot: if it sees a transfer, the zone it reads is the final one
        const now = (await prisma.$queryRaw<Array<{ zone: string, moved: boolean }>>`
          SELECT c.time_zone AS zone, EXISTS (SELECT 1 FROM transfer t WHERE t.currency_id = c.id) AS moved
            FROM currency c WHERE c.id = ${hit.info.id}::uuid`)[0]
        // updated in place: the entry still expires when it would have (the fees are re-read then)
        if (now.zone !== hit.info.calendar.zone) hit.info = { ...hit.info, calendar: calendarOf(now.zone) }
        hit.zoneFixed = now.moved
        return hit.info
      }
      const c = await repo.byCode(key)
      if (c == null) throw new DomainError('CURRENCY_NOT_FOUND', `no currency with code ${key}`)
      const info = toInfo(c)
      // not known to be fixed yet: the next resolve looks (its zone and a transfer, together)
      cache.set(key, { info, zoneFixed: false })
      codes.set(info.id, key)
      return info
    },

    async resolveId (id: string): Promise<CurrencyInfo> {
      const known = codes.get(id)
      if (known != null) return await this.resolve(known)
      const c = await repo.byId(id)
      if (c == null) throw new DomainError('CURRENCY_NOT_FOUND', 'currency not found')
      return await this.resolve(c.code)
    },

    async get (code: string) {
      const c = await repo.byCode(code.toUpperCase())
      if (c == null) throw new DomainError('CURRENCY_NOT_FOUND', `no currency with code ${code.toUpperCase()}`)
      return view(c)
    },

    async create (principal: Principal | null, input: CurrencyCreate, meta?: RequestMeta) {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      if (principal.role !== 'platform_issuer') {
        throw new DomainError('FORBIDDEN', 'only the platform issuer creates currencies')
      }
      const code = input.code.toUpperCase()
      const fee = (k: Channel) => parseRate(input.fees?.[k] ?? '0', `fees.${k}`).toFixed()
      try {
        const data = {
          code, name: input.name.trim(), backing: backingOf(input.backing ?? 'GBP'), decimals: input.decimals ?? 2,
          feeText: fee('text'), feeApp: fee('app'), feeOnline: fee('online'), feeApi: fee('api'), feeTill: fee('till'),
          redemptionFee: parseRate(input.redemptionFee ?? '0', 'redemptionFee').toFixed(),
          localAreas: parseLocalAreas(input.localAreas ?? []),
          timeZone: await checkZone(input.timeZone ?? 'UTC'),
        }
        const c = await prisma.$transaction(async (tx) => {
          const c = await currencyRepo(tx).create(data)
          await auditRepo(tx).insert(auditRecord(principal, 'currency.create', meta, { target: c.code, currencyId: c.id, detail: { name: c.name } }))
          return c
        })
        return view(c)
      } catch (err) {
        if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
          throw new DomainError('CURRENCY_EXISTS', `a currency with code ${code} already exists`)
        }
        throw err
      }
    },

    /**
     * Sets the currency's time zone (its issuer or the platform issuer). Only while it has no transfer: its
     * aggregates are cut in the zone as transfers are folded in, so a change later would need them rebuilt.
     */
    async updateTimeZone (principal: Principal | null, code: string, input: CurrencyUpdate, meta?: RequestMeta) {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      const key = code.toUpperCase()
      const found = await repo.byCode(key)
      if (found == null) throw new DomainError('CURRENCY_NOT_FOUND', `no currency with code ${key}`)
      if (!isIssuerOf(principal, found.id)) throw new DomainError('FORBIDDEN', 'only an issuer of this currency may change it')
      const zone = await checkZone(input.timeZone)
      const c = await prisma.$transaction(async (tx) => {
        const moved = async () => (await tx.$queryRaw<Array<{ n: number }>>`SELECT 1 AS n FROM transfer WHERE currency_id = ${found.id}::uuid LIMIT 1`).length > 0
        // The zone compared with is the one the currency has now, not `found`'s: another instance may have changed it
        // (and the first transfers landed) since, and asking for the old zone again must not pass as no change.
        const zoneNow = async () => (await tx.$queryRaw<Array<{ zone: string }>>`SELECT time_zone AS zone FROM currency WHERE id = ${found.id}::uuid`)[0].zone
        let from = await zoneNow()
        // Transfers are never deleted, so a currency seen with one keeps it: no lock is needed to refuse, or to
        // keep the same zone. Only a currency without transfers has its accounts locked, as a posting locks the
        // ones it touches (a posting under way finishes first and is seen by the second look; one that starts now
        // waits for the new zone); a large currency's payments are never held up by this request.
        const locked = zone !== from && !await moved()
        if (locked) {
          await tx.$queryRaw`SELECT id FROM account WHERE currency_id = ${found.id}::uuid ORDER BY id FOR NO KEY UPDATE`
          // a change by another request that held the locks before this one is seen now
          from = await zoneNow()
        }
        if (zone !== from && (!locked || await moved())) {
          throw new DomainError('TIME_ZONE_FIXED', `${key} has transfers: its reports are kept in ${from} and its time zone can no longer change`)
        }
        if (zone !== from) {
          // reports of the empty currency kept for periods cut in the old zone (the same zone again keeps them: a
          // replay must not make every report of a large currency be computed again)
          await tx.$executeRaw`DELETE FROM circ_composite WHERE currency_id = ${found.id}::uuid`
          await tx.currency.update({ where: { id: found.id }, data: { timeZone: zone } })
        }
        await auditRepo(tx).insert(auditRecord(principal, 'currency.time_zone', meta, {
          target: key, currencyId: found.id, detail: { from, to: zone },
        }))
        return await currencyRepo(tx).byId(found.id)
      })
      cache.delete(key)
      return view(c!)
    },

    /** For other services: may this principal act as issuer of this currency? */
    assertIssuer (principal: Principal | null, currencyId: string): asserts principal is Principal {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      if (!isIssuerOf(principal, currencyId)) throw new DomainError('FORBIDDEN', 'only an issuer of this currency may do this')
    },
  }
}

export type CurrencyService = ReturnType<typeof currencyService>
