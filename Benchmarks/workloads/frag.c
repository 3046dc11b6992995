/* Fragmentation: (1) fill FILL MiB with small blocks (16..256 B, uniform), (2) free a random 90 % of
 * them (in allocation order), keeping 10 % alive, (3) allocate large blocks (256 KiB .. 4 MiB)
 * totalling LARGE MiB and touch every page. The survivors pin most small-object pages, so phase 3
 * shows whether the allocator can reuse the freed memory or must grow. VmRSS is printed after each
 * phase; all data is checked at the end. The bookkeeping arrays come from mmap, not malloc.
 * Usage: frag [fill-MiB] [large-MiB]. */
#include "common.h"
#include <sys/mman.h>

static void *map(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("mmap(%zu) failed", n);
  return p;
}

int main(int argc, char **argv) {
  size_t fill = (size_t)arg_long(argc, argv, 1, 1024) << 20;
  size_t large = (size_t)arg_long(argc, argv, 2, 512) << 20;
  rng_t r;
  rng_seed(&r, 42);
  size_t cap = fill / 16 + 1;
  void **objs = map(cap * sizeof(void *));
  uint16_t *sizes = map(cap * sizeof(uint16_t));
  unsigned char *alive = map(cap);
  long base_kib = rss_kib();

  size_t n = 0, bytes = 0;                       /* phase 1: fill */
  while (bytes < fill) {
    size_t size = (size_t)rng_range(&r, 16, 256);
    objs[n] = xmalloc(size);
    sizes[n] = (uint16_t)size;
    tag_write(objs[n], size, tag_of(n, 1));
    bytes += size;
    n++;
  }
  long fill_kib = rss_kib();

  size_t kept = 0;                               /* phase 2: free a random 90 % */
  for (size_t i = 0; i < n; i++) {
    if (rng_below(&r, 10) == 0) { alive[i] = 1; kept++; continue; }
    if (!tag_ok(objs[i], sizes[i], tag_of(i, 1))) fail("frag: small block %zu corrupted before free", i);
    free(objs[i]);
  }
  long free_kib = rss_kib();

  size_t nlarge_cap = large / (256 << 10) + 1, nl = 0, lbytes = 0;   /* phase 3: large blocks */
  unsigned char **big = map(nlarge_cap * sizeof(void *));
  size_t *bsize = map(nlarge_cap * sizeof(size_t));
  while (lbytes < large && nl < nlarge_cap) {
    size_t size = rng_size(&r, 256 << 10, 4 << 20);
    big[nl] = xmalloc(size);
    bsize[nl] = size;
    for (size_t off = 0; off < size; off += 4096) big[nl][off] = (unsigned char)(nl + off / 4096);
    lbytes += size;
    nl++;
  }
  long large_kib = rss_kib();

  for (size_t i = 0; i < nl; i++) {               /* check everything, then free it */
    for (size_t off = 0; off < bsize[i]; off += 4096)
      if (big[i][off] != (unsigned char)(i + off / 4096)) fail("frag: large block %zu corrupted at %zu", i, off);
    free(big[i]);
  }
  for (size_t i = 0; i < n; i++) {
    if (!alive[i]) continue;
    if (!tag_ok(objs[i], sizes[i], tag_of(i, 1))) fail("frag: surviving block %zu corrupted", i);
    free(objs[i]);
  }
  printf("frag: ops=%zu small=%zu kept=%zu large=%zu RSS MiB: fill %.0f, after free %.0f, after large %.0f (harness %.0f)\n",
         n, n, kept, nl, fill_kib / 1024.0, free_kib / 1024.0, large_kib / 1024.0, base_kib / 1024.0);
  return 0;
}
