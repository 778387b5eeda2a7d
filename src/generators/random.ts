import { Faker, base, en } from '@faker-js/faker';

/**
 * Hashes the user's seed and a stream label to 32 bits (FNV-1a over the text, then a murmur3 finaliser).
 * Going through the decimal text makes any JS number a valid seed (negative, fractional, above 2^32)
 * without silently colliding e.g. 1 and 2^32 + 1, and the label gives each concern its own stream,
 * so turning one option on (say, malformed records) does not shift the random values of the others.
 */
export function deriveSeed(seed: number, label = ''): number {
  const text = `${seed}/${label}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_53 = 2 ** 53;

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator): passes PractRand, 128-bit state,
 * a few integer ops per draw. Not cryptographic, which is fine for test data.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is the user's seed; `label` picks an independent stream for it (see {@link deriveSeed}). */
  constructor(seed: number, label = '') {
    // splitmix32 expands the 32-bit seed so that nearby seeds do not start from nearby states.
    let s = deriveSeed(seed, label);
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = 1;
    // The first outputs of sfc32 still correlate with the seed; the reference implementation discards 12.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits, like Python's random.random(). */
  random(): number {
    const hi = this.uint32() >>> 5; // 27 bits
    const lo = this.uint32() >>> 6; // 26 bits
    return (hi * 0x400_0000 + lo) / TWO_POW_53;
  }

  /** Uniform in [a, b). */
  float(a: number, b: number): number {
    return a + (b - a) * this.random();
  }

  /** Uniform integer in [a, b], both inclusive, like Python's random.randint(a, b). */
  int(a: number, b: number): number {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a) {
      throw new RangeError(`Rng.int: need integers a <= b, got ${a}, ${b}`);
    }
    const span = b - a + 1;
    if (span <= TWO_POW_32) {
      // Rejection sampling keeps small ranges exactly uniform (no modulo bias).
      const limit = TWO_POW_32 - (TWO_POW_32 % span);
      let x = this.uint32();
      while (x >= limit) x = this.uint32();
      return a + (x % span);
    }
    return a + Math.floor(this.random() * span);
  }

  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.choice: empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** Fisher-Yates, in place; returns the same array for chaining. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** true with probability p (p <= 0 never, p >= 1 always). */
  bernoulli(p: number): boolean {
    return this.random() < p;
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const x = this.uint32();
      for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (x >>> (8 * k)) & 0xff;
    }
    return out;
  }
}

/**
 * A faker whose output depends only on `seed` (and the faker version): en names, base data as the fallback,
 * as the seeds' Python Faker() defaults to en_US.
 */
export function seededFaker(seed: number, label = 'faker'): Faker {
  return new Faker({ locale: [en, base], seed: deriveSeed(seed, label) });
}
