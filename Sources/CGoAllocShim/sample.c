// Random numbers and the heap profile's sampling maths (goalloc_sample.h): a per-thread xorshift
// generator seeded from the kernel (getrandom, else AT_RANDOM), exponential sample distances,
// and the unsampling scale, with log and exp written out here so the library does not pull in libm.
#define _GNU_SOURCE
#include "goalloc_sample.h"
#include "goalloc_os.h"
#include <errno.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A per-thread seed from the kernel: getrandom(2) (never blocking), else the 16 random bytes the
 * kernel put in the auxiliary vector (AT_RANDOM), mixed with the clock and the thread id (the
 * auxv bytes also seed libc's stack guard: only a mixed form of them may show). */
static uint64_t seed64(void) {
  uint64_t s = 0;
  int saved = errno;
  long n = syscall(SYS_getrandom, &s, sizeof s, 1 /* GRND_NONBLOCK */);
  errno = saved;
  if (n != (long)sizeof s) {
    const uint64_t *r = (const uint64_t *)getauxval(AT_RANDOM);
    s = (r ? r[0] * 0xD6E8FEB86659FD93ull ^ r[1] : 0) ^ goalloc_nanotime();
  }
  s ^= (uint64_t)goalloc_gettid() << 32;
  s = (s ^ (s >> 31)) * 0xBF58476D1CE4E5B9ull;  /* splitmix64's finalizer */
  s = (s ^ (s >> 27)) * 0x94D049BB133111EBull;
  s ^= s >> 31;
  return s ? s : 0x9E3779B97F4A7C15ull;  /* xorshift needs a nonzero state */
}

static __thread uint64_t rng_state;
uint64_t goalloc_random64(void) {
  if (rng_state == 0) rng_state = seed64();
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* log and exp for the heap profile's sampling, so the library does not pull in libm (about 300 KiB
 * of resident text in every process). Accurate to ~1e-12 relative; inputs are finite. */
static double ln_pos(double x) {  /* x > 0 */
  union { double d; uint64_t u; } v = { x };
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;  /* m in [1, 2) */
  double m = v.d;
  if (m > 1.4142135623730951) { m *= 0.5; e += 1; }              /* m in [0.707, 1.414] */
  double t = (m - 1) / (m + 1), t2 = t * t, term = t, sum = 0;     /* ln m = 2 atanh t */
  for (int k = 1; k < 40; k += 2) { sum += term / k; term *= t2; }
  return 2 * sum + e * 0.6931471805599453;
}

static double exp_neg(double x) {  /* e^-x for x >= 0 */
  if (x > 700) return 0;
  int k = (int)(x / 0.6931471805599453);
  double r = x - k * 0.6931471805599453, term = 1, sum = 1;        /* r in [0, ln 2) */
  for (int i = 1; i < 24; i++) { term *= -r / i; sum += term; }
  union { double d; uint64_t u; } v = { sum };
  v.u -= (uint64_t)k << 52;                                        /* sum / 2^k (sum >= 0.5) */
  return k > 1021 ? 0 : v.d;
}

uint64_t goalloc_next_sample(uint64_t mean) {
  if (mean <= 1) return 1;
  double u = ((double)(goalloc_random64() >> 11) + 1.0) / 9007199254740993.0;  /* (0, 1] */
  double d = -ln_pos(u) * (double)mean;
  return d < 1 ? 1 : (uint64_t)d;
}

uint64_t goalloc_scale_sample(uint64_t size, uint64_t rate) {
  if (rate <= 1 || size == 0) return size;
  double scale = 1.0 / (1.0 - exp_neg((double)size / (double)rate));
  return (uint64_t)((double)size * scale);
}
