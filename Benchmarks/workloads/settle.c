/* Memory given back after frees, over time: fill FILL MiB with small objects (16..256 B, 16 size
 * classes), then free every object of half the size classes and 90% of the others at random,
 * then sleep and print VmRSS once a second for SECONDS seconds. Spans of the emptied classes are
 * wholly free; an allocator that returns free pages to the OS shows RSS falling.
 * Usage: settle [fill-MiB] [seconds]. Prints "settle: RSS MiB: fill F, after free A, t=1 .., t=N X". */
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
  long fill = argc > 1 ? atol(argv[1]) : 512;
  int seconds = argc > 2 ? atoi(argv[2]) : 8;
  size_t n = (size_t)(fill << 20) / 136;  /* mean object size */
  void **p = malloc(n * sizeof(void *));
  unsigned char *cls = malloc(n);
  unsigned seed = 42;
  for (size_t i = 0; i < n; i++) {
    cls[i] = (unsigned char)(rand_r(&seed) % 16);
    size_t z = 16 + (size_t)cls[i] * 16;
    p[i] = malloc(z);
    memset(p[i], (int)cls[i] + 1, z);
  }
  long r_fill = rss_mib();
  for (size_t i = 0; i < n; i++)
    if (cls[i] % 2 == 0 || rand_r(&seed) % 10 != 0) { free(p[i]); p[i] = NULL; }
  long r_free = rss_mib();
  printf("settle: RSS MiB: fill %ld, after free %ld", r_fill, r_free);
  for (int t = 1; t <= seconds; t++) { sleep(1); printf(", t=%d %ld", t, rss_mib()); }
  printf("\n");
  size_t bad = 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] && ((unsigned char *)p[i])[0] != cls[i] + 1) bad++;
  if (bad) { printf("settle: %zu survivors corrupted\n", bad); return 1; }
  return 0;
}
