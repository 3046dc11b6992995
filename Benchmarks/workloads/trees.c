/* Binary trees of small nodes (24 B: left, right, value), the pattern of a program that builds and
 * drops trees: each of THREADS threads (1 or 2) builds complete trees of depth 4, 6, .. MAXDEPTH,
 * as many of each depth as make the same number of nodes per depth, walks each one (the node
 * count and the sum of the values must come out right) and frees it, ROUNDS times. A long-lived
 * tree of depth LONGDEPTH is built first and stays alive (and is checked) for the whole run, so the
 * heap is not empty while the short-lived trees come and go. Even trees are built children first,
 * odd ones parent first; all are freed children first.
 * Usage: trees [threads] [rounds] [maxdepth] [longdepth]. Prints ns per node (malloc + walk + free). */
#include "common.h"
#include <pthread.h>

typedef struct node { struct node *left, *right; long value; } node_t;

static node_t *new_node(long value) {
  node_t *n = xmalloc(sizeof *n);
  n->left = n->right = NULL;
  n->value = value;
  return n;
}

/* Children first: the nodes of a subtree come out of malloc before their parent. */
static node_t *build_up(int depth, long *next) {
  if (depth == 0) return new_node((*next)++);
  node_t *l = build_up(depth - 1, next), *r = build_up(depth - 1, next);
  node_t *n = new_node((*next)++);
  n->left = l;
  n->right = r;
  return n;
}

/* Parent first. */
static node_t *build_down(int depth, long *next) {
  node_t *n = new_node((*next)++);
  if (depth > 0) {
    n->left = build_down(depth - 1, next);
    n->right = build_down(depth - 1, next);
  }
  return n;
}

static void walk(const node_t *n, long *count, long *sum) {
  (*count)++;
  *sum += n->value;
  if (n->left) { walk(n->left, count, sum); walk(n->right, count, sum); }
}

static void drop(node_t *n) {
  if (n->left) { drop(n->left); drop(n->right); }
  free(n);
}

/* Walks the tree and fails unless it has the 2^(depth+1) - 1 nodes numbered first, first+1, ... */
static void check(const node_t *t, int depth, long first, const char *what) {
  long count = 0, sum = 0, n = (2L << depth) - 1;
  walk(t, &count, &sum);
  if (count != n || sum != n * first + n * (n - 1) / 2)
    fail("trees: %s tree of depth %d has %ld nodes, value sum %ld (want %ld, %ld)", what, depth, count, sum, n,
         n * first + n * (n - 1) / 2);
}

/* The workers sit side by side in one array: the count is kept in a local and stored at the end. */
typedef struct { long id, rounds, maxdepth, nodes; } worker_t;

static void *run(void *arg) {
  worker_t *w = arg;
  long nodes = 0;
  for (long r = 0; r < w->rounds; r++) {
    for (int d = 4; d <= w->maxdepth; d += 2) {
      long trees = 1L << (w->maxdepth - d + 2);   /* 2^(maxdepth + 3) nodes per depth, about */
      for (long t = 0; t < trees; t++) {
        long first = (r + t) * 7 + w->id, next = first;
        node_t *tree = (t & 1) ? build_down(d, &next) : build_up(d, &next);
        check(tree, d, first, "a short-lived");
        drop(tree);
        nodes += next - first;
      }
    }
  }
  w->nodes = nodes;
  return NULL;
}

int main(int argc, char **argv) {
  long nthreads = arg_long(argc, argv, 1, 1);
  long rounds = arg_long(argc, argv, 2, 4);
  long maxdepth = arg_long(argc, argv, 3, 16);
  long longdepth = arg_long(argc, argv, 4, 16);
  if (maxdepth < 4 || maxdepth > 30 || longdepth > 30) fail("trees: depths must be 4..30 (maxdepth) and 1..30");
  worker_t *ws = calloc((size_t)nthreads, sizeof *ws);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!ws || !th) fail("calloc failed");
  double t0 = now_s();
  long next = 1000;
  node_t *keep = build_up((int)longdepth, &next);
  for (long i = 0; i < nthreads; i++) {
    ws[i] = (worker_t){ .id = i, .rounds = rounds, .maxdepth = maxdepth };
    if (pthread_create(&th[i], NULL, run, &ws[i])) fail("pthread_create failed");
  }
  long nodes = 0;
  for (long i = 0; i < nthreads; i++) { pthread_join(th[i], NULL); nodes += ws[i].nodes; }
  check(keep, (int)longdepth, 1000, "the long-lived");
  drop(keep);
  double t1 = now_s();
  printf("trees: ops=%ld threads=%ld %.1f ns per node (malloc + walk + free), long-lived tree of %ld nodes\n",
         nodes, nthreads, (t1 - t0) * 1e9 / (double)nodes, (2L << longdepth) - 1);
  free(ws);
  free(th);
  return 0;
}
