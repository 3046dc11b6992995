/* The memory limit on small objects (issue 16): 40 MiB live of 16..4096 B objects (log-uniform,
 * 16..8191 B with the jitter), freed and reallocated at random, in phases that shift the size mix
 * (16..511, 64..2047, 256..8191 B) so the spans of the sizes going out of use empty out only
 * slowly. The program's own tables (16 MiB) are touched before the first malloc, so
 * peak - base is what the allocator added.
 * Arguments: live MiB (40), phases (6), order (`random`, the default: each step frees and
 * reallocates a random entry; `fifo`: the entries in turn, so objects die in the order they were
 * allocated and the spans of a size going out of use empty whole). Prints
 * "memchurn live=N base=N peak=N MiB base_kib=N peak_kib=N" (VmRSS before the first malloc,
 * VmHWM at the end; in MiB rounded down, then in KiB). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long status_kib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char l[256];
  long v = 0;
  size_t n = strlen(key);
  if (!f) return 0;
  while (fgets(l, sizeof l, f))
    if (!strncmp(l, key, n)) v = atol(l + n);
  fclose(f);
  return v;
}

enum { N = 1 << 20 };
static char *p[N];
static size_t s[N];

int main(int argc, char **argv) {
  long target = (argc > 1 ? atol(argv[1]) : 40) << 20;
  int rounds = argc > 2 ? atoi(argv[2]) : 6;
  int fifo = argc > 3 && !strcmp(argv[3], "fifo");
  long live = 0;
  unsigned seed = 1;
  memset(p, 0, sizeof p);
  memset(s, 0, sizeof s);
  long base = status_kib("VmRSS:");
  for (int phase = 0; phase < rounds; phase++) {
    int lo = 4 + (phase % 3) * 2; /* 16..256, 64..1024, 256..4096 (times 1..2) */
    for (long it = 0; it < 3000000; it++) {
      int i = fifo ? (int)(it % N) : rand_r(&seed) % N;
      if (p[i]) { free(p[i]); live -= s[i]; p[i] = 0; }
      if (live < target) {
        size_t z = (size_t)1 << (lo + rand_r(&seed) % 5);
        z += rand_r(&seed) % z;
        p[i] = malloc(z);
        if (!p[i]) { printf("malloc failed\n"); return 3; }
        memset(p[i], 1, z < 64 ? z : 64);
        s[i] = z;
        live += z;
      }
    }
  }
  long peak = status_kib("VmHWM:");
  printf("memchurn live=%ld base=%ld peak=%ld MiB base_kib=%ld peak_kib=%ld\n", live >> 20, base >> 10,
         peak >> 10, base, peak);
  return 0;
}
