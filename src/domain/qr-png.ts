import { crc32, deflateSync } from 'node:zlib'
import QRCode from 'qrcode'

// A payment request's QR code as a PNG, drawn from the qrcode library's symbol as a one-bit greyscale image.
//
// Why not the library's own PNG: it fills an RGBA bitmap pixel by pixel and filters it in JavaScript (pngjs),
// about 20 ms of the event loop's time per image, so one till re-asking for its QR code four at a time kept every
// other caller of the instance waiting. A symbol is black and white squares: one bit a pixel, a row of bytes
// repeated `scale` times, and zlib's native deflate, well under a millisecond. test/requests/qr-png.test.ts checks
// that the pixels are the library's, for many texts.

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

function chunk (type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'latin1')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))) >>> 0, 0)
  return Buffer.concat([head, data, crc])
}

/** The PNG of `text`'s QR code: `margin` light modules around it (the quiet zone), `scale` pixels a module. */
export function qrPng (text: string, opts: { errorCorrectionLevel: 'L' | 'M' | 'Q' | 'H', margin: number, scale: number }): Buffer {
  const { size, data } = QRCode.create(text, { errorCorrectionLevel: opts.errorCorrectionLevel }).modules
  const modules = size + 2 * opts.margin
  const width = modules * opts.scale
  // each row: a filter byte (0: none), then one bit a pixel, 1 light (white) and 0 dark, most significant first
  const rowBytes = 1 + Math.ceil(width / 8)
  const raw = Buffer.alloc(rowBytes * width)
  for (let m = 0; m < modules; m++) {
    const row = Buffer.alloc(rowBytes)
    for (let x = 0; x < width; x++) {
      const col = Math.floor(x / opts.scale) - opts.margin
      const r = m - opts.margin
      const dark = r >= 0 && r < size && col >= 0 && col < size && data[r * size + col] === 1
      if (!dark) row[1 + (x >> 3)] |= 0x80 >> (x & 7)
    }
    for (let k = 0; k < opts.scale; k++) row.copy(raw, (m * opts.scale + k) * rowBytes)
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(width, 4)
  header[8] = 1 // bit depth
  header[9] = 0 // greyscale
  // compression, filter and interlace methods: 0, the only ones PNG defines (and no interlacing)
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))])
}
