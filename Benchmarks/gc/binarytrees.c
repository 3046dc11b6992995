/* binarytrees: the Benchmarks Game's binary-trees shape for `goalloc bench gc` (written for
 * GoAlloc): a stretch tree, one long-lived tree of depth N, and at each depth d = 4, 6, ..., N
 * 2^(N - d + 4) trees of depth d built bottom-up, checked and dropped. Nodes are 16 B scanned
 * objects (GC_MALLOC; -DGCSTATS_EXPLICIT_FREE: calloc, and each tree freed). Prints a checksum line that does not depend on the collector, then
 * gcstats.h's line.
 * Usage: binarytrees [N]   (default 18) */
#include "gcstats.h"

typedef struct Tree { struct Tree *l, *r; } Tree;

static Tree *tree(int d) {
  Tree *t = checked(GC_MALLOC(sizeof *t));
  if (d > 0) {
    GC_STORE(t->l, tree(d - 1));
    GC_STORE(t->r, tree(d - 1));
  }
  return t;
}

static long check(Tree *t) { return t->l ? 1 + check(t->l) + check(t->r) : 1; }

/* Explicit-free build only: frees a tree (the GC build drops it). */
static void drop(Tree *t) {
#ifdef GCSTATS_EXPLICIT_FREE
  if (t->l) { drop(t->l); drop(t->r); }
  GCSTATS_FREE(t);
#else
  (void)t;
#endif
}

int main(int argc, char **argv) {
  GC_INIT();
  gcstats_start();
  int n = argc > 1 ? atoi(argv[1]) : 18;
  Tree *stretch = tree(n + 1);
  long sum = check(stretch);
  drop(stretch);
  Tree *longLived = tree(n);
  for (int d = 4; d <= n; d += 2) {
    long iters = 1L << (n - d + 4);
    for (long i = 0; i < iters; i++) {
      Tree *t = tree(d);
      sum += check(t);
      drop(t);
    }
  }
  sum += check(longLived);
  drop(longLived);
  printf("binarytrees: depth=%d check=%ld\n", n, sum);
  gcstats_report();
  return 0;
}
