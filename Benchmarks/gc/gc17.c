/* gc17: many 17-byte objects, most dying young, for `goalloc bench gc` (written for GoAlloc): the
 * issue's "a 17 B allocation in GC mode against Go's `new` of a 17 B struct, in ns per object
 * including collection". Allocates N pointer-free 17 B objects (GC_MALLOC_ATOMIC: Go's [17]byte
 * struct is pointer-free too), writes two bytes of each, and keeps each in a ring of K slots
 * (a global: a root) until K later allocations replace it; so all but K die young. A dropped
 * object's bytes are checked into the result line. Benchmarks/go/gcwork.go does the same work.
 * -DGCSTATS_EXPLICIT_FREE frees each object as it leaves the ring.
 * Usage: gc17 [N] [K]   (default 50000000 objects, 10000 kept) */
#include "gcstats.h"

enum { MAXK = 1 << 16 };
static unsigned char *ring[MAXK];

int main(int argc, char **argv) {
  GC_INIT();
  gcstats_start();
  long n = argc > 1 ? atol(argv[1]) : 50000000L;
  long k = argc > 2 ? atol(argv[2]) : 10000;
  if (k < 1 || k > MAXK) k = 10000;
  unsigned long sum = 0;
  for (long i = 0; i < n; i++) {
    unsigned char *p = checked(GC_MALLOC_ATOMIC(17));
    p[0] = (unsigned char)i;
    p[16] = (unsigned char)(i >> 8);
    long slot = i % k;
    unsigned char *old = ring[slot];
    if (old) {
      sum += (unsigned long)old[0] + old[16];
      GCSTATS_FREE(old);
    }
    ring[slot] = p;
  }
  printf("gc17: objects=%ld kept=%ld check=%lu\n", n, k, sum);
  gcstats_report();
  return 0;
}
