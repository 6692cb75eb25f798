import { createRequire } from 'node:module'
import QRCode from 'qrcode'
import t from 'tap'
import { qrPng } from '../../src/domain/qr-png.js'

// The QR code PNG the service draws (src/domain/qr-png.ts) has exactly the pixels of the qrcode library's own PNG,
// for texts of every length a payment request's QR text can have and for the options the route uses and others.
// Both are decoded by pngjs (the library's PNG encoder, installed with it), which also checks the chunks' CRCs.

interface Decoded { width: number, height: number, data: Buffer }
const { PNG } = createRequire(import.meta.url)('pngjs') as { PNG: { sync: { read: (b: Buffer) => Decoded } } }

/** Whether each pixel is dark, row by row (the decoded data is RGBA whatever the file's colour type). */
const darkness = (png: Buffer): { width: number, dark: boolean[] } => {
  const d = PNG.sync.read(png)
  t.equal(d.width, d.height)
  const dark: boolean[] = []
  for (let i = 0; i < d.width * d.height; i++) dark.push(d.data[4 * i] < 128)
  return { width: d.width, dark }
}

t.test('the same pixels as the library\'s PNG', async (t) => {
  const base = 'https://pay.example.org/pay/0f8fad5b-d9cb-469f-a165-70867728950e'
  const texts = ['x', base, `${base}?currency=BRS&amount=12.60`, `${base}?currency=BRS&amount=${'9'.repeat(40)}.99`, 'é€ and ✓ '.repeat(20)]
  const options = [
    { errorCorrectionLevel: 'M', margin: 4, scale: 8 },
    { errorCorrectionLevel: 'L', margin: 0, scale: 1 },
    { errorCorrectionLevel: 'H', margin: 2, scale: 3 },
    { errorCorrectionLevel: 'Q', margin: 1, scale: 5 },
  ] as const
  for (const text of texts) {
    for (const o of options) {
      const ours = darkness(qrPng(text, o))
      const theirs = darkness(await QRCode.toBuffer(text, { type: 'png', ...o }))
      t.equal(ours.width, theirs.width, `${text.length} characters, ${JSON.stringify(o)}: the same size`)
      t.ok(ours.dark.every((d, i) => d === theirs.dark[i]), `${text.length} characters, ${JSON.stringify(o)}: every pixel the same`)
      t.ok(ours.dark.some(d => d) && ours.dark.some(d => !d), 'both dark and light pixels')
    }
  }
})
