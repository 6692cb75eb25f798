// The settings every database session of the service starts with.
/**
 * The connection string with `-c TimeZone=UTC` added to the options it sends at connect (any it had, or else
 * PGOPTIONS, and `extra`, are kept in front). Every session of the service runs in UTC, whatever the database's or the role's time zone:
 * the service's days are its currencies' own (each currency's zone, named in every query that needs one), and a
 * session left in the server's zone would make what the SQL does not name depend on the server's settings ("now() -
 * interval '1 day'" is 23 hours on a Europe/London server the day after the clocks go forward; a timestamptz read
 * as text, a version compared between instances, is written in that zone). In the string, not the pool's `options`:
 * pg lets a connection string's own parameters override the pool's.
 */
export function inUtc (url: string, extra = ''): string {
  // a fragment, if any, stays last (the query written before it is the one read)
  const hash = url.indexOf('#')
  const connectionString = hash < 0 ? url : url.slice(0, hash)
  const fragment = hash < 0 ? '' : url.slice(hash)
  const at = connectionString.indexOf('?')
  const query = new URLSearchParams(at < 0 ? '' : connectionString.slice(at + 1))
  // a URL without options of its own took PGOPTIONS (pg reads it when no options are given): kept in front too
  query.set('options', [query.get('options') ?? process.env.PGOPTIONS, extra, '-c TimeZone=UTC'].filter(o => o != null && o !== '').join(' '))
  return `${at < 0 ? connectionString : connectionString.slice(0, at)}?${query.toString()}${fragment}`
}
