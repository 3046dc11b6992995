/* Small malloc/free pairs on one thread: N iterations of malloc(SIZE) + write + free.
 * Usage: pair [iterations] [size]. Prints ns per pair. Written for GoAlloc's benchmark suite. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 50000000;
  size_t size = argc > 2 ? (size_t)atol(argv[2]) : 64;
  void *volatile sink;
  struct timespec a, b;
  for (long i = 0; i < 1000; i++) { void *p = malloc(size); sink = p; free(p); }
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    char *p = malloc(size);
    p[0] = (char)i;
    sink = p;
    free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
  printf("%.2f ns per malloc/free pair of %zu B\n", ns, size);
  (void)sink;
  return 0;
}
