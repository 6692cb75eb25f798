import { DomainError } from './errors.js'

// UK postcodes: outward code (area letters + district, e.g. "BS6", "BS16", "EC1A") and inward code ("5AB").
const POSTCODE_RE = /^([A-Z]{1,2}[0-9][0-9A-Z]?) ?([0-9][A-Z]{2})$/

export interface Postcode { full: string, district: string, area: string }

export function parsePostcode (raw: string, field = 'postcode'): Postcode {
  const m = POSTCODE_RE.exec(raw.trim().toUpperCase())
  if (m == null) {
    throw new DomainError('INVALID_POSTCODE', `${field} is not a UK postcode such as "BS6 5AB"`,
      [{ pointer: `/${field}`, detail: 'not a UK postcode' }])
  }
  return { full: `${m[1]} ${m[2]}`, district: m[1], area: m[1].replace(/[0-9].*$/, '') }
}

/** The postcode area of a district: "BS" for BS6. */
export const areaOf = (district: string): string => district.replace(/[0-9].*$/, '')

/** A district is local when the currency lists it, or its whole postcode area ("BS"). */
export function isLocal (district: string, localAreas: readonly string[]): boolean {
  const area = district.replace(/[0-9].*$/, '')
  return localAreas.includes(district) || localAreas.includes(area)
}

/** Normalises the currency's list of local areas: districts ("BS6") or whole areas ("BS"). */
export function parseLocalAreas (raw: readonly string[]): string[] {
  const out = new Set<string>()
  raw.forEach((a, i) => {
    const v = a.trim().toUpperCase()
    if (!/^[A-Z]{1,2}([0-9][0-9A-Z]?)?$/.test(v)) {
      throw new DomainError('VALIDATION_FAILED', `localAreas[${i}] must be a postcode area ("BS") or district ("BS6")`,
        [{ pointer: `/localAreas/${i}`, detail: 'not a postcode area or district' }])
    }
    out.add(v)
  })
  return [...out]
}
