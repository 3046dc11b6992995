// A GCBench-shaped program written for the Boehm GC (gc.h, -lgc): binary trees built top-down
// and bottom-up at several depths, a long-lived tree and a long-lived array of doubles, explicit
// collections, and checks. Prints only results that do not depend on the collector, so its
// output is the same on bdwgc and on GoAlloc (LD_PRELOAD=libgoalloc.so).
#include <gc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Node { struct Node *left, *right; long i, j; } Node;

static Node *node(Node *l, Node *r) {
  Node *n = GC_MALLOC(sizeof *n);
  if (!n) { printf("FAIL out of memory\n"); exit(1); }
  if (n->left || n->right || n->i || n->j) { printf("FAIL GC_MALLOC memory not zeroed\n"); exit(1); }
  n->left = l; n->right = r;
  return n;
}
static int nodes(int depth) { return (1 << (depth + 1)) - 1; }
static void populate(int depth, Node *n) {   // top-down
  if (depth <= 0) return;
  n->left = node(NULL, NULL); n->right = node(NULL, NULL);
  populate(depth - 1, n->left); populate(depth - 1, n->right);
}
static Node *make(int depth) {               // bottom-up
  return depth <= 0 ? node(NULL, NULL) : node(make(depth - 1), make(depth - 1));
}
static long count(Node *n) { return n ? 1 + count(n->left) + count(n->right) : 0; }
static long checksum(Node *n) { return n ? n->i + 3 * checksum(n->left) - checksum(n->right) : 0; }
static void number(Node *n, long *k) { if (n) { n->i = (*k)++; number(n->left, k); number(n->right, k); } }

int main(void) {
  GC_INIT();
  const int stretch = 16, longLived = 14, minDepth = 4, maxDepth = 14;
  Node *t = make(stretch);
  printf("stretch tree of depth %d: %ld nodes\n", stretch, count(t));
  t = NULL;
  Node *keep = node(NULL, NULL);
  populate(longLived, keep);
  long k = 0; number(keep, &k);
  long keepSum = checksum(keep);
  printf("long-lived tree of depth %d: %ld nodes\n", longLived, count(keep));
  enum { N = 500000 };
  double *array = GC_MALLOC_ATOMIC(sizeof(double) * N);
  for (int i = 0; i < N / 2; i++) array[i] = 1.0 / i;
  for (int d = minDepth; d <= maxDepth; d += 2) {
    int iters = nodes(maxDepth) / nodes(d) * 2;
    long total = 0;
    for (int i = 0; i < iters; i++) {
      Node *a = node(NULL, NULL); populate(d, a); total += count(a);
      Node *b = make(d); total += count(b);
    }
    printf("%d trees of depth %d (top-down and bottom-up): %ld nodes\n", 2 * iters, d, total);
  }
  GC_gcollect();
  // Strings (atomic), realloc, explicit free, GC_base and GC_size.
  char *s = GC_STRDUP("goalloc and bdwgc");
  char *r = GC_REALLOC(s, 4096);
  int ok = r && strcmp(r, "goalloc and bdwgc") == 0;
  ok = ok && GC_base(r + 100) == r && GC_size(r) >= 4096;
  char *u = GC_MALLOC_UNCOLLECTABLE(64);
  ok = ok && u && GC_base(u) == u;
  GC_FREE(u); GC_FREE(r);
  printf("strings, realloc, base, size: %s\n", ok ? "ok" : "FAIL");
  GC_gcollect();
  k = 0;
  Node *again = keep; (void)again;
  if (count(keep) != nodes(longLived) || checksum(keep) != keepSum || array[1000] != 1.0 / 1000)
    printf("FAIL long-lived data damaged\n");
  else
    printf("long-lived tree and array intact\n");
  printf("collections ran: %s\n", GC_get_gc_no() > 0 ? "yes" : "no");
  printf("heap size positive: %s\n", GC_get_heap_size() > 0 ? "yes" : "no");
  printf("total bytes >= 16 MiB: %s\n", GC_get_total_bytes() >= (16u << 20) ? "yes" : "no");
  return 0;
}
