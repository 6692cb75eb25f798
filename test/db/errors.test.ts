import t from 'tap'
import { fromDatabaseError } from '../../src/db/errors.js'

// Every failure mode the faults suite saw when PostgreSQL went away (test-faults/db-outage.faults.ts), and the
// data exceptions the fuzzer provoked, map to a client-facing code instead of a 500.
t.test('database failures map to 503 SERVICE_UNAVAILABLE, bad data to 422', async (t) => {
  const cases: Array<[string, unknown, string | null]> = [
    ['pg socket reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' }), 'SERVICE_UNAVAILABLE'],
    ['pg connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 'SERVICE_UNAVAILABLE'],
    ['connection terminated', new Error('Connection terminated unexpectedly'), 'SERVICE_UNAVAILABLE'],
    ['pool timeout', new Error('timeout exceeded when trying to connect'), 'SERVICE_UNAVAILABLE'],
    ['admin shutdown', { code: '57P01', message: 'terminating connection due to administrator command' }, 'SERVICE_UNAVAILABLE'],
    ['crash shutdown', { code: '57P02', message: 'terminating connection because of crash of another server process' }, 'SERVICE_UNAVAILABLE'],
    ['starting up', { code: '57P03', message: 'the database system is starting up' }, 'SERVICE_UNAVAILABLE'],
    ['statement timeout', { code: '57014', message: 'canceling statement due to statement timeout' }, 'SERVICE_UNAVAILABLE'],
    ['too many connections', { code: '53300', message: 'sorry, too many clients already' }, 'SERVICE_UNAVAILABLE'],
    ['out of shared memory (lock table)', { code: '53200', message: 'out of shared memory' }, 'SERVICE_UNAVAILABLE'],
    ['Prisma P1001', { code: 'P1001', message: 'Can\'t reach database server' }, 'SERVICE_UNAVAILABLE'],
    ['Prisma $queryRaw, database not reachable', { code: 'P2010', message: 'Raw query failed', meta: { driverAdapterError: { cause: { kind: 'DatabaseNotReachable' } } } }, 'SERVICE_UNAVAILABLE'],
    ['Prisma, connection closed', { code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'ConnectionClosed' } } } }, 'SERVICE_UNAVAILABLE'],
    ['Prisma, postgres shutdown code', { code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'postgres', code: '57P01' } } } }, 'SERVICE_UNAVAILABLE'],
    ['NUL in text', { code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0x00' }, 'VALIDATION_FAILED'],
    ['Prisma, value out of range', { code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'ValueOutOfRange' } } } }, 'VALIDATION_FAILED'],
    ['Prisma, NUL in text', { code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'postgres', code: '22021' } } } }, 'VALIDATION_FAILED'],
    ['the floor constraint', { code: '23514', constraint: 'account_floor_check' }, 'INSUFFICIENT_FUNDS'],
    ['a function\'s own guard (22023) keeps its message', { code: '22023', message: 'the ledger clock: 2030-01-01 is in the future' }, null],
    ['anything else', new Error('boom'), null],
    ['a syntax error is a bug, not the client\'s', { code: '42601', message: 'syntax error' }, null],
  ]
  for (const [name, err, code] of cases) t.equal(fromDatabaseError(err)?.code ?? null, code, name)
})
