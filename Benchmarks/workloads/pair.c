/* Small malloc/free pairs on one thread: N iterations of malloc(SIZE) + write + free.
 * Usage: pair [iterations] [size]. Prints ns per pair. Written for GoAlloc's benchmark suite.
 * SIZE 0 means mixed sizes: the pairs cycle through 256 sizes of 8..511 B (log-uniform bands,
 * fixed seed), so several size classes are hit in turn. */
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
