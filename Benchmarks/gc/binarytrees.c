/* binarytrees: the Benchmarks Game's binary-trees shape for `goalloc bench gc` (written for
 * GoAlloc): a stretch tree, one long-lived tree of depth N, and at each depth d = 4, 6, ..., N
 * 2^(N - d + 4) trees of depth d built bottom-up, checked and dropped. Nodes are 16 B scanned
 * objects (GC_MALLOC). Prints a checksum line that does not depend on the collector, then
 * gcstats.h's line.
 * Usage: binarytrees [N]   (default 18) */
#include "gcstats.h"

typedef struct Tree { struct Tree *l, *r; } Tree;

static Tree *tree(int d) {
  Tree *t = checked(GC_MALLOC(sizeof *t));
  if (d > 0) {
    t->l = tree(d - 1);
    t->r = tree(d - 1);
  }
  return t;
}

static long check(Tree *t) { return t->l ? 1 + check(t->l) + check(t->r) : 1; }

int main(int argc, char **argv) {
  GC_INIT();
  gcstats_start();
  int n = argc > 1 ? atoi(argv[1]) : 18;
  long sum = check(tree(n + 1));
  Tree *longLived = tree(n);
  for (int d = 4; d <= n; d += 2) {
    long iters = 1L << (n - d + 4);
    for (long i = 0; i < iters; i++) sum += check(tree(d));
  }
  sum += check(longLived);
  printf("binarytrees: depth=%d check=%ld\n", n, sum);
  gcstats_report();
  return 0;
}
