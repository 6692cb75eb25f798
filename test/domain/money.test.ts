import t from 'tap'
import { feeFor, formatMoney, Money, parseAmount, parseLimit } from '../../src/domain/money.js'
import { isLocal, parsePostcode } from '../../src/domain/postcode.js'

t.test('parseAmount accepts plain decimals within the currency\'s places', async (t) => {
  t.equal(parseAmount('12.60', 2).toFixed(2), '12.60')
  t.equal(parseAmount('12.6', 2).toFixed(2), '12.60')
  t.equal(parseAmount('7', 0).toFixed(0), '7')
  t.equal(parseAmount('999999999999.99', 2).toFixed(2), '999999999999.99', '15 digits, exactly, no float on the way')
  t.equal(parseAmount('90071992547409.9', 2).toFixed(2), '90071992547409.90', 'beyond 2^53 stays exact')
})

t.test('parseAmount refuses, never rounds', async (t) => {
  for (const bad of ['12.601', '0', '0.00', '-5', '1e3', 'abc', '', '1.', '.5', '01', '+1', ' 1', '1 ', '1,00', 'Infinity', 'NaN', '1234567890123456']) {
    t.throws(() => parseAmount(bad, 2), { name: 'DomainError', code: 'INVALID_AMOUNT' }, JSON.stringify(bad))
  }
  for (const bad of [12.6, null, undefined, true, ['1'], { v: '1' }]) {
    t.throws(() => parseAmount(bad, 2), /decimal string/, `a JSON ${JSON.stringify(bad)}`)
  }
  t.throws(() => parseAmount('1.5', 0), /1 decimal places; this currency has 0/)
})

t.test('fees round half-up to the minor unit', async (t) => {
  const fee = (a: string, r: string, d = 2) => feeFor(new Money(a), new Money(r), d).toFixed(d)
  t.equal(fee('12.60', '0.02'), '0.25', '2% of 12.60 is 0.252 -> 0.25')
  t.equal(fee('12.75', '0.02'), '0.26', '0.255 rounds half up')
  t.equal(fee('0.01', '0.02'), '0.00', 'a fee below half a penny is nothing')
  t.equal(fee('100.00', '0.03'), '3.00')
  t.equal(fee('10', '0.05', 0), '1', '0.5 rounds up with no decimals')
})

t.test('limits may be zero or negative; formatting is fixed-point', async (t) => {
  t.equal(parseLimit('-20.00', 2, 'floor').toFixed(2), '-20.00')
  t.equal(parseLimit('0', 2, 'floor').toFixed(2), '0.00')
  t.throws(() => parseLimit('-0.001', 2, 'floor'))
  t.equal(formatMoney('87.400000', 2), '87.40')
  t.equal(formatMoney('-0.25', 2), '-0.25')
})

t.test('postcodes: districts and locality', async (t) => {
  t.same(parsePostcode('bs6 5ab'), { full: 'BS6 5AB', district: 'BS6', area: 'BS' })
  t.same(parsePostcode('BS165AB').district, 'BS16')
  t.same(parsePostcode('EC1A 1BB').district, 'EC1A')
  t.throws(() => parsePostcode('NOWHERE'), { name: 'DomainError', code: 'INVALID_POSTCODE' })
  t.ok(isLocal('BS16', ['BS']))
  t.ok(isLocal('BA1', ['BS', 'BA1']))
  t.notOk(isLocal('BA2', ['BS', 'BA1']))
})
