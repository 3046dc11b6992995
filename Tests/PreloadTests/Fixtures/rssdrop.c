/* RSS falls after a large free: 64 MiB of 64-byte objects and 64 MiB of 1 MiB blocks are
 * allocated, touched and freed; the program then polls VmRSS until it is back near where it
 * started (the allocator must give the pages back by itself, within a bounded time).
 * Prints "rss start=N peak=N end=N MiB after=Xms" and exits 0 when RSS fell enough. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long rss_mib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) { if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0; fclose(f); }
  return res * sysconf(_SC_PAGESIZE) >> 20;
}

int main(void) {
  enum { SMALL = 1 << 20, LARGE = 64 };
  static void *small[SMALL];
  static void *large[LARGE];
  long start = rss_mib();
  for (int i = 0; i < SMALL; i++) { small[i] = malloc(64); memset(small[i], i, 64); }
  for (int i = 0; i < LARGE; i++) { large[i] = malloc(1 << 20); memset(large[i], i, 1 << 20); }
  long peak = rss_mib();
  for (int i = 0; i < SMALL; i++) {
    if (((unsigned char *)small[i])[63] != (unsigned char)i) { printf("corrupt\n"); return 2; }
    free(small[i]);
  }
  for (int i = 0; i < LARGE; i++) free(large[i]);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long now = rss_mib(), ms = 0;
  while (now > start + 24 && ms < 10000) {
    usleep(100 * 1000);
    now = rss_mib();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  }
  printf("rss start=%ld peak=%ld end=%ld MiB after=%ldms\n", start, peak, now, ms);
  return now <= start + 24 ? 0 : 1;
}
