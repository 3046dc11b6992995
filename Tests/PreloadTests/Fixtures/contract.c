// glibc's allocator contract, checked from the outside. Prints one line per check,
// "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>", then "contract: N checks, F failures"
// and exits 1 if any check failed. Runs with or without libgoalloc.so preloaded.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int checks, failures;
static char why[256];

static void report(const char *name, int ok) {
  checks++;
  if (ok) {
    printf("PASS %s\n", name);
  } else {
    failures++;
    printf("FAIL %s: %s\n", name, why[0] ? why : "?");
  }
  why[0] = 0;
  fflush(stdout);
}

#define FAIL_IF(cond, ...)                        \
  do {                                            \
    if (cond) {                                   \
      snprintf(why, sizeof why, __VA_ARGS__);     \
      return 0;                                   \
    }                                             \
  } while (0)

// Values the compiler cannot see through (no folding of overflow checks or huge sizes).
static volatile size_t v_huge = (size_t)1 << 40;
static volatile size_t v_max = SIZE_MAX;

static unsigned char pat(uintptr_t seed, size_t i) { return (unsigned char)((seed * 2654435761u) ^ (i * 131u) ^ (i >> 8)); }

static void fill(void *p, size_t n, uintptr_t seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = pat(seed, i);
}

// Index of the first byte that differs from the pattern, or (size_t)-1.
static size_t verify(const void *p, size_t n, uintptr_t seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != pat(seed, i)) return i;
  return (size_t)-1;
}

static int all_bytes(const void *p, size_t n, unsigned char v) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return 0;
  return 1;
}

static int is_goalloc(void) { return dlsym(RTLD_DEFAULT, "goalloc_check_heap") != NULL; }

static int check_malloc_zero(void) {
  enum { N = 100 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(0);
    FAIL_IF(p[i] == NULL, "malloc(0) #%d returned NULL", i);
  }
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++) FAIL_IF(p[i] == p[j], "malloc(0) #%d and #%d both %p", i, j, p[i]);
  for (int i = 0; i < N; i++) free(p[i]);
  free(NULL);
  return 1;
}

static int check_calloc_overflow(void) {
  errno = 0;
  void *p = calloc(v_huge, v_huge);
  FAIL_IF(p != NULL, "calloc(2^40, 2^40) returned %p", p);
  FAIL_IF(errno != ENOMEM, "errno %d, expected ENOMEM", errno);
  errno = 0;
  p = calloc(v_max, 2);
  FAIL_IF(p != NULL, "calloc(SIZE_MAX, 2) returned %p", p);
  FAIL_IF(errno != ENOMEM, "errno %d after calloc(SIZE_MAX, 2), expected ENOMEM", errno);
  errno = 0;
  p = calloc(2, v_max / 2 + 1);
  FAIL_IF(p != NULL, "calloc(2, SIZE_MAX/2+1) returned %p", p);
  FAIL_IF(errno != ENOMEM, "errno %d after calloc(2, SIZE_MAX/2+1)", errno);
  return 1;
}

static int check_malloc_huge(void) {
  errno = 0;
  void *p = malloc(v_max / 2);
  FAIL_IF(p != NULL, "malloc(SIZE_MAX/2) returned %p", p);
  FAIL_IF(errno != ENOMEM, "errno %d, expected ENOMEM", errno);
  errno = 0;
  p = malloc(v_max);
  FAIL_IF(p != NULL, "malloc(SIZE_MAX) returned %p", p);
  FAIL_IF(errno != ENOMEM, "errno %d after malloc(SIZE_MAX)", errno);
  char *q = malloc(100);
  FAIL_IF(q == NULL, "malloc(100) after a failed huge malloc returned NULL");
  fill(q, 100, 7);
  FAIL_IF(verify(q, 100, 7) != (size_t)-1, "malloc(100) memory does not hold a pattern");
  free(q);
  return 1;
}

static int check_calloc_zero(void) {
  static const size_t sizes[] = {1, 8, 15, 16, 24, 100, 1000, 4096, 10000, 32768, 32769, 100000, 1 << 20, 3 << 20};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t n = sizes[s];
    for (int round = 0; round < 20; round++) {
      unsigned char *p = malloc(n);
      FAIL_IF(p == NULL, "malloc(%zu) returned NULL", n);
      memset(p, 0xff, n);
      free(p);
      unsigned char *q = calloc(1, n);
      FAIL_IF(q == NULL, "calloc(1, %zu) returned NULL", n);
      FAIL_IF(!all_bytes(q, n, 0), "calloc(1, %zu) round %d not zero", n, round);
      memset(q, 0xff, n);
      free(q);
      q = calloc(n, 1);
      FAIL_IF(q == NULL, "calloc(%zu, 1) returned NULL", n);
      FAIL_IF(!all_bytes(q, n, 0), "calloc(%zu, 1) round %d not zero", n, round);
      memset(q, 0xee, n);
      free(q);
    }
  }
  // Many dirty objects freed at once, then calloc'd back.
  enum { K = 256 };
  static const size_t batch[] = {48, 512, 3000, 20000};
  for (size_t s = 0; s < sizeof batch / sizeof batch[0]; s++) {
    size_t n = batch[s];
    void *p[K];
    for (int i = 0; i < K; i++) {
      p[i] = malloc(n);
      FAIL_IF(p[i] == NULL, "malloc(%zu) returned NULL", n);
      memset(p[i], 0xa5, n);
    }
    for (int i = 0; i < K; i++) free(p[i]);
    for (int i = 0; i < K; i++) {
      p[i] = calloc(n / 8, 8);
      FAIL_IF(p[i] == NULL, "calloc(%zu, 8) returned NULL", n / 8);
      FAIL_IF(!all_bytes(p[i], n, 0), "calloc(%zu, 8) #%d after dirty frees not zero", n / 8, i);
    }
    for (int i = 0; i < K; i++) free(p[i]);
  }
  return 1;
}

static int check_realloc_null(void) {
  char *p = realloc(NULL, 50);
  FAIL_IF(p == NULL, "realloc(NULL, 50) returned NULL");
  FAIL_IF(malloc_usable_size(p) < 50, "usable size %zu < 50", malloc_usable_size(p));
  fill(p, 50, 3);
  FAIL_IF(verify(p, 50, 3) != (size_t)-1, "pattern lost");
  free(p);
  p = realloc(NULL, 70000);
  FAIL_IF(p == NULL, "realloc(NULL, 70000) returned NULL");
  fill(p, 70000, 4);
  FAIL_IF(verify(p, 70000, 4) != (size_t)-1, "pattern lost in 70000-byte block");
  free(p);
  return 1;
}

static int check_realloc_chain(void) {
  static const size_t steps[] = {10, 100, 5000, 100000, 40, 3000000, 16, 1};
  size_t n = steps[0];
  char *p = malloc(n);
  FAIL_IF(p == NULL, "malloc(%zu) returned NULL", n);
  fill(p, n, 11);
  for (size_t s = 1; s < sizeof steps / sizeof steps[0]; s++) {
    size_t m = steps[s];
    char *q = realloc(p, m);
    FAIL_IF(q == NULL, "realloc(%zu -> %zu) returned NULL", n, m);
    size_t keep = n < m ? n : m;
    size_t bad = verify(q, keep, 11);
    FAIL_IF(bad != (size_t)-1, "realloc %zu -> %zu lost byte %zu", n, m, bad);
    FAIL_IF(malloc_usable_size(q) < m, "usable size %zu < %zu", malloc_usable_size(q), m);
    fill(q, m, 11);
    p = q;
    n = m;
  }
  free(p);
  return 1;
}

static int check_realloc_zero(void) {
  static const size_t sizes[] = {1, 100, 5000, 200000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    void *p = malloc(sizes[s]);
    FAIL_IF(p == NULL, "malloc(%zu) returned NULL", sizes[s]);
    void *r = realloc(p, 0);
    FAIL_IF(r != NULL, "realloc(p[%zu], 0) returned %p, glibc returns NULL", sizes[s], r);
  }
  return 1;
}

static int check_reallocarray(void) {
  char *p = reallocarray(NULL, 8, 8);
  FAIL_IF(p == NULL, "reallocarray(NULL, 8, 8) returned NULL");
  fill(p, 64, 21);
  errno = 0;
  char *q = reallocarray(p, v_max / 4, 8);
  FAIL_IF(q != NULL, "reallocarray(p, SIZE_MAX/4, 8) returned %p", q);
  FAIL_IF(errno != ENOMEM, "errno %d, expected ENOMEM", errno);
  errno = 0;
  q = reallocarray(p, v_huge, v_huge);
  FAIL_IF(q != NULL, "reallocarray(p, 2^40, 2^40) returned %p", q);
  FAIL_IF(errno != ENOMEM, "errno %d after reallocarray(p, 2^40, 2^40)", errno);
  FAIL_IF(verify(p, 64, 21) != (size_t)-1, "old block changed after failed reallocarray");
  q = reallocarray(p, 1000, 10);
  FAIL_IF(q == NULL, "reallocarray(p, 1000, 10) returned NULL");
  FAIL_IF(verify(q, 64, 21) != (size_t)-1, "prefix lost by reallocarray(p, 1000, 10)");
  fill(q, 10000, 22);
  FAIL_IF(verify(q, 10000, 22) != (size_t)-1, "grown block does not hold a pattern");
  free(q);
  return 1;
}

static int check_posix_memalign_einval(void) {
  static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 4097};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *p = NULL;
    int r = posix_memalign(&p, bad[i], 16);
    FAIL_IF(r != EINVAL, "posix_memalign(align %zu) returned %d, expected EINVAL", bad[i], r);
  }
  return 1;
}

static int check_posix_memalign(void) {
  for (size_t a = sizeof(void *); a <= ((size_t)2 << 20); a <<= 1) {
    size_t sizes[] = {100, a, a + 1, 3 * a / 2, 5 * a};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      void *p = NULL;
      int r = posix_memalign(&p, a, sizes[s]);
      FAIL_IF(r != 0 || p == NULL, "posix_memalign(align %zu, size %zu) returned %d", a, sizes[s], r);
      FAIL_IF((uintptr_t)p % a != 0, "posix_memalign(align %zu, size %zu) gave %p", a, sizes[s], p);
      FAIL_IF(malloc_usable_size(p) < sizes[s], "usable size %zu < %zu", malloc_usable_size(p), sizes[s]);
      fill(p, sizes[s], a);
      FAIL_IF(verify(p, sizes[s], a) != (size_t)-1, "pattern lost (align %zu)", a);
      free(p);
    }
  }
  return 1;
}

// Small requests with an alignment above their natural one: every combination of alignment
// 8..4096 and size 1..64, through posix_memalign, aligned_alloc and memalign.
static int check_aligned_small_sizes(void) {
  for (size_t a = 8; a <= 4096; a <<= 1) {
    for (size_t n = 1; n <= 64; n++) {
      void *p = NULL;
      int r = posix_memalign(&p, a, n);
      FAIL_IF(r != 0 || p == NULL, "posix_memalign(align %zu, size %zu) returned %d", a, n, r);
      FAIL_IF((uintptr_t)p % a != 0, "posix_memalign(align %zu, size %zu) gave %p", a, n, p);
      void *q = aligned_alloc(a, n);
      FAIL_IF(q == NULL, "aligned_alloc(%zu, %zu) returned NULL", a, n);
      FAIL_IF((uintptr_t)q % a != 0, "aligned_alloc(%zu, %zu) gave %p", a, n, q);
      void *m = memalign(a, n);
      FAIL_IF(m == NULL, "memalign(%zu, %zu) returned NULL", a, n);
      FAIL_IF((uintptr_t)m % a != 0, "memalign(%zu, %zu) gave %p", a, n, m);
      fill(p, n, 1); fill(q, n, 2); fill(m, n, 3);
      FAIL_IF(verify(p, n, 1) != (size_t)-1 || verify(q, n, 2) != (size_t)-1 || verify(m, n, 3) != (size_t)-1,
              "aligned objects (align %zu, size %zu) overlap", a, n);
      free(p); free(q); free(m);
    }
  }
  return 1;
}

// glibc before 2.38 treats aligned_alloc like memalign (rounds the alignment up); 2.38 and
// GoAlloc fail with EINVAL.
static int aligned_alloc_strict(void) {
  int major = 0, minor = 0;
  sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor);
  return is_goalloc() || major > 2 || (major == 2 && minor >= 38);
}

static int check_aligned_alloc_einval(void) {
  static const size_t bad[] = {3, 5, 24};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *p = aligned_alloc(bad[i], 64);
    FAIL_IF(p != NULL, "aligned_alloc(%zu, 64) returned %p", bad[i], p);
    FAIL_IF(errno != EINVAL, "aligned_alloc(%zu, 64): errno %d, expected EINVAL", bad[i], errno);
  }
  return 1;
}

static int check_aligned_alloc(void) {
  for (size_t a = 1; a <= 65536; a <<= 1) {
    void *p = aligned_alloc(a, 3 * a);
    FAIL_IF(p == NULL, "aligned_alloc(%zu, %zu) returned NULL", a, 3 * a);
    FAIL_IF((uintptr_t)p % a != 0, "aligned_alloc(%zu) gave %p", a, p);
    fill(p, 3 * a, a);
    FAIL_IF(verify(p, 3 * a, a) != (size_t)-1, "pattern lost (align %zu)", a);
    free(p);
  }
  return 1;
}

static int check_memalign(void) {
  for (size_t a = 1; a <= (1 << 20); a <<= 1) {
    void *p = memalign(a, 100);
    FAIL_IF(p == NULL, "memalign(%zu, 100) returned NULL", a);
    FAIL_IF((uintptr_t)p % a != 0, "memalign(%zu, 100) gave %p", a, p);
    fill(p, 100, a);
    free(p);
  }
  // A non-power-of-two alignment is rounded up to the next power of two.
  void *p = memalign(24, 10);
  FAIL_IF(p == NULL, "memalign(24, 10) returned NULL");
  FAIL_IF((uintptr_t)p % 32 != 0, "memalign(24, 10) gave %p (not 32-aligned)", p);
  free(p);
  return 1;
}

static int check_valloc_pvalloc(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 100000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    void *p = valloc(sizes[s]);
    FAIL_IF(p == NULL, "valloc(%zu) returned NULL", sizes[s]);
    FAIL_IF((uintptr_t)p % page != 0, "valloc(%zu) gave %p", sizes[s], p);
    fill(p, sizes[s], 5);
    FAIL_IF(verify(p, sizes[s], 5) != (size_t)-1, "valloc(%zu) pattern lost", sizes[s]);
    free(p);
    size_t rounded = (sizes[s] + page - 1) / page * page;
    p = pvalloc(sizes[s]);
    FAIL_IF(p == NULL, "pvalloc(%zu) returned NULL", sizes[s]);
    FAIL_IF((uintptr_t)p % page != 0, "pvalloc(%zu) gave %p", sizes[s], p);
    FAIL_IF(malloc_usable_size(p) < rounded, "pvalloc(%zu): usable size %zu < %zu", sizes[s],
            malloc_usable_size(p), rounded);
    fill(p, rounded, 6);
    FAIL_IF(verify(p, rounded, 6) != (size_t)-1, "pvalloc(%zu) pattern lost", sizes[s]);
    free(p);
  }
  return 1;
}

static int check_usable_size(void) {
  FAIL_IF(malloc_usable_size(NULL) != 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
  size_t n = 1;
  while (n <= ((size_t)4 << 20)) {
    unsigned char *p = malloc(n);
    FAIL_IF(p == NULL, "malloc(%zu) returned NULL", n);
    size_t u = malloc_usable_size(p);
    FAIL_IF(u < n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
    memset(p, 0x5a, u);  // the whole usable size belongs to the caller
    FAIL_IF(!all_bytes(p, u, 0x5a), "usable bytes of malloc(%zu) did not keep their value", n);
    free(p);
    n = n < 5000 ? n + 1 : n + n / 7 + 3;
  }
  return 1;
}

static int check_alignment(void) {
  enum { MAXN = 4096 };
  static void *p[MAXN + 1];
  for (size_t n = 1; n <= MAXN; n++) {
    p[n] = malloc(n);
    FAIL_IF(p[n] == NULL, "malloc(%zu) returned NULL", n);
    size_t need = 16;
    while (need > n) need >>= 1;  // smaller requests need only the largest power of two <= size
    FAIL_IF((uintptr_t)p[n] % need != 0, "malloc(%zu) = %p is not %zu-aligned", n, p[n], need);
  }
  for (size_t n = 1; n <= MAXN; n++) free(p[n]);
  static const size_t large[] = {5000, 32767, 32768, 32769, 65536 + 8, 100000, 1 << 20, (1 << 20) + 1, 5 << 20, 33 << 20};
  for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
    void *q = malloc(large[i]);
    FAIL_IF(q == NULL, "malloc(%zu) returned NULL", large[i]);
    FAIL_IF((uintptr_t)q % 16 != 0, "malloc(%zu) = %p is not 16-aligned", large[i], q);
    void *c = calloc(1, large[i]);
    FAIL_IF(c == NULL || (uintptr_t)c % 16 != 0, "calloc(1, %zu) = %p is not 16-aligned", large[i], c);
    void *r = realloc(NULL, large[i]);
    FAIL_IF(r == NULL || (uintptr_t)r % 16 != 0, "realloc(NULL, %zu) = %p is not 16-aligned", large[i], r);
    free(q);
    free(c);
    free(r);
  }
  return 1;
}

// Many live objects of many sizes: each keeps its own full pattern until it is freed, and no two
// live objects overlap.
static int check_patterns(void) {
  enum { N = 3000 };
  static unsigned char *p[N];
  static size_t n[N];
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < N; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    int kind = (int)(x % 100);
    n[i] = kind < 70 ? 1 + (x >> 8) % 512 : kind < 95 ? 1 + (x >> 8) % 32768 : 1 + (x >> 8) % 300000;
    p[i] = malloc(n[i]);
    FAIL_IF(p[i] == NULL, "malloc(%zu) returned NULL", n[i]);
    fill(p[i], n[i], (uintptr_t)i + 1);
  }
  for (int i = 0; i < N; i += 2) {  // free half, allocate again into the holes
    size_t bad = verify(p[i], n[i], (uintptr_t)i + 1);
    FAIL_IF(bad != (size_t)-1, "object %d (%zu bytes at %p) lost byte %zu", i, n[i], (void *)p[i], bad);
    free(p[i]);
  }
  for (int i = 0; i < N; i += 2) {
    p[i] = malloc(n[i]);
    FAIL_IF(p[i] == NULL, "malloc(%zu) returned NULL", n[i]);
    fill(p[i], n[i], (uintptr_t)i + 1);
  }
  for (int i = 0; i < N; i++) {
    for (int j = i + 1; j < N; j++) {
      uintptr_t a = (uintptr_t)p[i], b = (uintptr_t)p[j];
      FAIL_IF(a < b + n[j] && b < a + n[i], "objects %d (%p+%zu) and %d (%p+%zu) overlap", i,
              (void *)p[i], n[i], j, (void *)p[j], n[j]);
    }
  }
  for (int i = 0; i < N; i++) {
    size_t bad = verify(p[i], n[i], (uintptr_t)i + 1);
    FAIL_IF(bad != (size_t)-1, "object %d (%zu bytes at %p) lost byte %zu", i, n[i], (void *)p[i], bad);
    free(p[i]);
  }
  return 1;
}

int main(void) {
  printf("allocator %s\n", is_goalloc() ? "goalloc" : "system");
  report("malloc_zero_unique", check_malloc_zero());
  report("calloc_overflow_enomem", check_calloc_overflow());
  report("malloc_huge_enomem", check_malloc_huge());
  report("calloc_zeroed", check_calloc_zero());
  report("realloc_null_is_malloc", check_realloc_null());
  report("realloc_keeps_prefix", check_realloc_chain());
  report("realloc_zero_frees", check_realloc_zero());
  report("reallocarray_overflow_enomem", check_reallocarray());
  report("posix_memalign_einval", check_posix_memalign_einval());
  report("posix_memalign_aligned", check_posix_memalign());
  report("aligned_small_sizes", check_aligned_small_sizes());
  if (aligned_alloc_strict()) {
    report("aligned_alloc_einval", check_aligned_alloc_einval());
  } else {
    printf("SKIP aligned_alloc_einval: glibc %s rounds the alignment up\n", gnu_get_libc_version());
  }
  report("aligned_alloc_aligned", check_aligned_alloc());
  report("memalign_aligned", check_memalign());
  report("valloc_pvalloc_page_aligned", check_valloc_pvalloc());
  report("usable_size", check_usable_size());
  report("alignment_16", check_alignment());
  report("patterns_survive", check_patterns());
  printf("contract: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
