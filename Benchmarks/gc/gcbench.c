/* gcbench: GCBench-shaped work for `goalloc bench gc` (written for GoAlloc): a long-lived binary
 * tree and a long-lived array of doubles stay reachable while trees of growing depth are built
 * top-down (populated in place) and bottom-up, and dropped. Nodes are 32 B scanned objects
 * (GC_MALLOC), the array is pointer-free (GC_MALLOC_ATOMIC); -DGCSTATS_EXPLICIT_FREE frees each
 * tree once walked. Prints a checksum line that does
 * not depend on the collector, then gcstats.h's line.
 * Usage: gcbench [MAX_DEPTH]   (default 18) */
#include "gcstats.h"

typedef struct Node { struct Node *left, *right; long i, j; } Node;

static Node *node(Node *l, Node *r) {
  Node *n = checked(GC_MALLOC(sizeof *n));
  GC_STORE(n->left, l);
  GC_STORE(n->right, r);
  return n;
}

static long nodes(int depth) { return (1L << (depth + 1)) - 1; }

static void populate(int depth, Node *n) {
  if (depth <= 0) return;
  GC_STORE(n->left, node(NULL, NULL));
  GC_STORE(n->right, node(NULL, NULL));
  populate(depth - 1, n->left);
  populate(depth - 1, n->right);
}

static Node *make(int depth) { return depth <= 0 ? node(NULL, NULL) : node(make(depth - 1), make(depth - 1)); }

static long walk(Node *n) { return n ? 1 + walk(n->left) + walk(n->right) : 0; }

/* Explicit-free build only: frees a tree (the GC build drops it). */
static void drop(Node *n) {
#ifdef GCSTATS_EXPLICIT_FREE
  if (!n) return;
  drop(n->left);
  drop(n->right);
  GCSTATS_FREE(n);
#else
  (void)n;
#endif
}

int main(int argc, char **argv) {
  GC_INIT();
  gcstats_start();
  int maxDepth = argc > 1 ? atoi(argv[1]) : 18;
  int longLived = maxDepth - 2, stretch = maxDepth + 1, minDepth = 4;
  Node *s = make(stretch);
  long total = walk(s);
  drop(s);
  Node *keep = node(NULL, NULL);
  populate(longLived, keep);
  long n = 1L << (maxDepth + 1);
  double *array = checked(GC_MALLOC_ATOMIC(sizeof(double) * (size_t)n));
  for (long i = 0; i < n / 2; i++) array[i] = 1.0 / (double)(i + 1);
  for (int d = minDepth; d <= maxDepth; d += 2) {
    long iters = 2 * nodes(maxDepth) / nodes(d);
    for (long i = 0; i < iters; i++) {
      Node *a = node(NULL, NULL);
      populate(d, a);
      total += walk(a);
      drop(a);
      Node *b = make(d);
      total += walk(b);
      drop(b);
    }
  }
  if (walk(keep) != nodes(longLived) || array[1000] != 1.0 / 1001.0) { fprintf(stderr, "long-lived data lost\n"); return 3; }
  printf("gcbench: depth=%d nodes=%ld\n", maxDepth, total);
  drop(keep);
  GCSTATS_FREE(array);
  gcstats_report();
  return 0;
}
