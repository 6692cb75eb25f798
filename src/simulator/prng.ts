// A seeded pseudo-random generator, so a simulation is reproducible from its seed: the same seed and parameters
// give the same economy, transfer for transfer. Nothing in the simulator may call Math.random.
//
// sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 32-bit): passes PractRand and BigCrush, needs only
// 32-bit integer arithmetic, so it is exact and identical on every JavaScript engine. Seeded through splitmix32 so
// nearby seeds give unrelated streams.

export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number
  private spare: number | null = null

  constructor (seed: number) {
    let s = seed >>> 0
    const splitmix = () => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = splitmix(); this.b = splitmix(); this.c = splitmix(); this.d = splitmix()
    for (let i = 0; i < 12; i++) this.u32()
  }

  /** A uniform 32-bit unsigned integer. */
  u32 (): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  /** Uniform in [0, 1). */
  next (): number { return this.u32() / 4294967296 }

  /** Uniform integer in [0, n). */
  int (n: number): number { return Math.floor(this.next() * n) }

  chance (p: number): boolean { return this.next() < p }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal (): number {
    if (this.spare != null) { const v = this.spare; this.spare = null; return v }
    let u = 0
    while (u === 0) u = this.next()
    const v = this.next()
    const r = Math.sqrt(-2 * Math.log(u))
    this.spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }

  /** Log-normal with the given median and sigma (of the underlying normal): skewed sizes such as prices. */
  logNormal (median: number, sigma: number): number { return median * Math.exp(sigma * this.normal()) }

  /** Poisson-distributed count with mean lambda (Knuth's method; lambda here is always small). */
  poisson (lambda: number): number {
    if (lambda <= 0) return 0
    const l = Math.exp(-lambda)
    let k = 0
    let p = 1
    do { k++; p *= this.next() } while (p > l)
    return k - 1
  }

  pick<T> (items: readonly T[]): T { return items[this.int(items.length)] }

  /** An index drawn with probability proportional to its weight. */
  weighted (weights: readonly number[]): number {
    let total = 0
    for (const w of weights) total += w
    let x = this.next() * total
    for (let i = 0; i < weights.length; i++) { x -= weights[i]; if (x < 0) return i }
    return weights.length - 1
  }
}

/** A table for drawing many times from the same weights: binary search over cumulative sums. */
export class WeightedTable<T> {
  private readonly cum: number[] = []
  private readonly total: number
  constructor (readonly items: readonly T[], weights: readonly number[]) {
    let s = 0
    for (const w of weights) { s += w; this.cum.push(s) }
    this.total = s
  }

  get empty (): boolean { return this.items.length === 0 || this.total <= 0 }

  draw (rng: Prng): T {
    const x = rng.next() * this.total
    let lo = 0
    let hi = this.cum.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.cum[mid] > x) hi = mid; else lo = mid + 1
    }
    return this.items[lo]
  }
}
