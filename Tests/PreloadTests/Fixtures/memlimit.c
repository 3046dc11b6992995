/* A workload whose live set (about 64 MiB) fits a memory limit, with churn that would otherwise
 * keep more pages: large blocks of random sizes (256 KiB .. 8 MiB) replaced at random, contents
 * checked. Prints "memlimit live=N peak_rss=N MiB" (peak of VmRSS sampled every 64 replaces). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long rss_mib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) { if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0; fclose(f); }
  return res * sysconf(_SC_PAGESIZE) >> 20;
}

int main(int argc, char **argv) {
  enum { SLOTS = 16 };
  int rounds = argc > 1 ? atoi(argv[1]) : 3000;
  unsigned seed = 12345;
  void *p[SLOTS] = {0};
  size_t sz[SLOTS] = {0};
  long live = 0, peak = 0;
  for (int r = 0; r < rounds; r++) {
    int i = rand_r(&seed) % SLOTS;
    if (p[i]) {
      if (((unsigned char *)p[i])[sz[i] - 1] != (unsigned char)(sz[i] >> 12)) { printf("corrupt\n"); return 2; }
      free(p[i]);
      live -= (long)sz[i];
    }
    sz[i] = (size_t)(256 << 10) + (size_t)(rand_r(&seed) % (8 << 20));
    if (live + (long)sz[i] > (64l << 20)) { p[i] = 0; sz[i] = 0; continue; }
    p[i] = malloc(sz[i]);
    if (!p[i]) { printf("malloc failed\n"); return 3; }
    memset(p[i], (int)(sz[i] >> 12), sz[i]);
    live += (long)sz[i];
    if (r % 64 == 0) { long m = rss_mib(); if (m > peak) peak = m; }
  }
  long m = rss_mib(); if (m > peak) peak = m;
  printf("memlimit live=%ld peak_rss=%ld MiB\n", live >> 20, peak);
  return 0;
}
