/* realloc growth: BUFFERS buffers grow side by side, round-robin, each by a small random step
 * (16..256 B) until it passes LIMIT (default 1 MiB); then its whole content is checked, it is
 * freed and starts again from empty. Interleaving keeps neighbours in the way, so in-place growth
 * is rare. The bytes added at each step are written, and the byte before them (the old end) is
 * checked after each realloc, so a realloc that loses data fails.
 * Usage: realloc [rounds] [buffers] [limit-bytes]. `rounds` = full growths per buffer.
 * Prints the number of realloc calls, ns per call, and how often the block moved (and how many
 * bytes that was: the old length at each move, an upper bound for allocators that move large
 * blocks with mremap instead of copying). */
#include "common.h"

typedef struct { unsigned char *p; size_t len; uint32_t gen; } buf_t;

static inline unsigned char byte_at(long b, uint32_t gen, size_t i) {
  return (unsigned char)((i * 131u) ^ ((size_t)b * 7u) ^ gen);
}

int main(int argc, char **argv) {
  long rounds = arg_long(argc, argv, 1, 2);
  long nbuf = arg_long(argc, argv, 2, 64);
  long limit = arg_long(argc, argv, 3, 1 << 20);
  rng_t r;
  rng_seed(&r, 7);
  buf_t *bufs = calloc((size_t)nbuf, sizeof *bufs);
  if (!bufs) fail("calloc failed");
  long done = 0, calls = 0, moves = 0, total = rounds * nbuf;
  double copied = 0;              /* bytes the allocator had to move (old length at each move) */
  double t0 = now_s();
  while (done < total) {
    for (long b = 0; b < nbuf && done < total; b++) {
      buf_t *s = &bufs[b];
      size_t step = (size_t)rng_range(&r, 16, 256);
      unsigned char *q = realloc(s->p, s->len + step);
      calls++;
      if (q != s->p && s->p != NULL) { moves++; copied += (double)s->len; }
      if (q == NULL) fail("realloc(%zu) returned NULL", s->len + step);
      if (s->len > 0 && (q[0] != byte_at(b, s->gen, 0) || q[s->len - 1] != byte_at(b, s->gen, s->len - 1)))
        fail("realloc: buffer %ld lost its data growing %zu -> %zu B", b, s->len, s->len + step);
      for (size_t i = s->len; i < s->len + step; i++) q[i] = byte_at(b, s->gen, i);
      s->p = q;
      s->len += step;
      if (s->len >= (size_t)limit) {
        for (size_t i = 0; i < s->len; i++)
          if (s->p[i] != byte_at(b, s->gen, i)) fail("realloc: buffer %ld byte %zu wrong at %zu B", b, i, s->len);
        free(s->p);
        s->p = NULL;
        s->len = 0;
        s->gen++;
        done++;
      }
    }
  }
  double t1 = now_s();
  for (long b = 0; b < nbuf; b++) free(bufs[b].p);
  free(bufs);
  printf("realloc: ops=%ld buffers=%ld %.1f ns per realloc, %ld moves, %.0f MiB copied\n", calls, nbuf,
         (t1 - t0) * 1e9 / (double)calls, moves, copied / 1048576.0);
  return 0;
}
