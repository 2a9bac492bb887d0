/** A small seeded PRNG (mulberry32) for making test data; the library's own order is the engine's. */
export class TestRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  nextFloat(): number {
    return this.nextUint32() / 0x100000000;
  }
  nextInt(n: number): number {
    return this.nextUint32() % n;
  }
}
