// A small seeded PRNG (mulberry32): k-means++ and PCA's start vector must give the same picture
// for the same input and seed, which Math.random cannot.

/** Returns a function yielding floats in [0, 1), determined by the 32-bit `seed`. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
