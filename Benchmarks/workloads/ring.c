/* Mid-size ring on one thread: LIVE blocks of SIZE bytes (default 1000 of 40 000 B) stay alive in
 * a ring; each step frees the oldest block and allocates a new one in its place, writing a few
 * bytes into it (a tag in its first and last 8 bytes, checked before the block is freed). Nothing
 * else touches the blocks, so the time is the allocator's handling of blocks between the small
 * size classes and "huge" (the row shows it for 40 000 B; 65536, 131072 and 204800 give
 * 64 KiB, 128 KiB and 200 KiB).
 * Usage: ring [steps] [size] [live]. Prints ns per step (one free + one malloc). */
#include "common.h"

/* The tag goes into the first and the last 8 bytes only: a few bytes per block. */
static inline void ends_write(unsigned char *p, size_t size, uint64_t tag) {
  memcpy(p, &tag, 8);
  memcpy(p + size - 8, &tag, 8);
}

static inline int ends_ok(const unsigned char *p, size_t size, uint64_t tag) {
  uint64_t a, b;
  memcpy(&a, p, 8);
  memcpy(&b, p + size - 8, 8);
  return a == tag && b == tag;
}

int main(int argc, char **argv) {
  long steps = arg_long(argc, argv, 1, 20000000);
  long size = arg_long(argc, argv, 2, 40000);
  long live = arg_long(argc, argv, 3, 1000);
  if (size < 16) fail("ring: size must be at least 16 B, not %ld", size);
  unsigned char **ring = calloc((size_t)live, sizeof *ring);
  if (!ring) fail("calloc of the ring failed");

  for (long i = 0; i < live; i++) {             /* fill the ring: block i has generation i */
    ring[i] = xmalloc((size_t)size);
    ends_write(ring[i], (size_t)size, tag_of(0, (uint64_t)i));
  }

  double t0 = now_s();
  for (long k = 0; k < steps; k++) {
    long i = k % live;                          /* the oldest block: generation k */
    if (!ends_ok(ring[i], (size_t)size, tag_of(0, (uint64_t)k)))
      fail("ring: block of generation %ld (%ld B at %p) corrupted before free", k, size, (void *)ring[i]);
    free(ring[i]);
    ring[i] = xmalloc((size_t)size);
    ends_write(ring[i], (size_t)size, tag_of(0, (uint64_t)(k + live)));
  }
  double t1 = now_s();

  for (long k = steps; k < steps + live; k++) {
    long i = k % live;
    if (!ends_ok(ring[i], (size_t)size, tag_of(0, (uint64_t)k))) fail("ring: block %ld corrupted at the end", i);
    free(ring[i]);
  }
  free(ring);
  printf("ring: ops=%ld size=%ld live=%ld %.1f ns per step, live %.1f MiB\n", steps, size, live,
         (t1 - t0) * 1e9 / (double)steps, (double)size * (double)live / 1048576.0);
  return 0;
}
