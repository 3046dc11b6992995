/* Small malloc/free pairs on one thread: N iterations of malloc(SIZE) + write + free.
 * Usage: pair [iterations] [size] [window]. Prints ns per pair. Written for GoAlloc's benchmark
 * suite. SIZE 0 means mixed sizes: the pairs cycle through 256 sizes of 8..511 B (log-uniform
 * bands, fixed seed), so several size classes are hit in turn. WINDOW > 0 (a power of two) keeps
 * that many blocks live instead: each iteration frees a random one of them and allocates its
 * replacement, of a random size of 16..515 B (xorshift; the free is of a block allocated earlier
 * at another size, as in a program's steady state). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 50000000;
  size_t size = argc > 2 ? (size_t)atol(argv[2]) : 64;
  size_t sizes[256];
  unsigned long long s = 12345;
  for (int i = 0; i < 256; i++) {           /* mixed mode: 8 << (0..5) plus a random offset in band */
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    size_t band = (size_t)8 << ((s >> 33) % 6);
    sizes[i] = size ? size : band + (size_t)((s >> 17) % band);
  }
  long window = argc > 3 ? atol(argv[3]) : 0;
  if (window > 0) {
    if (window & (window - 1)) { fprintf(stderr, "pair: the window must be a power of two\n"); return 2; }
    char **live = calloc((size_t)window, sizeof *live);
    unsigned long long x = 88172645463325252ull;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      long j = (long)(x & (unsigned long long)(window - 1));
      free(live[j]);
      live[j] = malloc(16 + (size_t)((x >> 10) % 500));
      if (live[j] == NULL) { fprintf(stderr, "WORKLOAD FAILED: malloc returned NULL\n"); return 3; }
      live[j][0] = (char)i;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
    printf("pair: ops=%ld %.2f ns per malloc/free pair, 16..515 B, %ld live\n", n, ns, window);
    for (long j = 0; j < window; j++) free(live[j]);
    free(live);
    return 0;
  }
  void *volatile sink;
  struct timespec a, b;
  for (long i = 0; i < 1000; i++) { void *p = malloc(sizes[i & 255]); sink = p; free(p); }
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    char *p = malloc(sizes[i & 255]);
    if (p == NULL) { fprintf(stderr, "WORKLOAD FAILED: malloc returned NULL\n"); return 3; }
    p[0] = (char)i;
    sink = p;
    free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
  if (size)
    printf("pair: ops=%ld %.2f ns per malloc/free pair of %zu B\n", n, ns, size);
  else
    printf("pair: ops=%ld %.2f ns per malloc/free pair, mixed 8..511 B\n", n, ns);
  (void)sink;
  return 0;
}
