/* gcbig: a large live heap of small objects for `goalloc bench gc` (written for GoAlloc), where
 * a collector that marks with the world stopped pauses for the whole live set. MIB mebibytes of
 * scanned nodes of 32, 48 or 64 B (random, 48 B on average) are kept live as chains of 32
 * nodes, each chain's head in one big pointer array, each node linked to the next and to a
 * random earlier node of its chain. Then chains are churned: a random one is checked and
 * replaced by a new one, until CHURN percent of the live nodes have been replaced, so the heap
 * stays the same size while collections run (-DGCSTATS_EXPLICIT_FREE: the old chain is freed).
 * Prints a checksum line that does not depend on the collector, then gcstats.h's line.
 * Usage: gcbig [MIB] [CHURN]   (default 1228 200: 1.2 GiB live, 2.4 GiB replaced) */
#include "gcstats.h"

typedef struct Node {
  struct Node *next, *other;
  uint32_t chain, pos;
  uint64_t tag[];  /* 1, 3 or 5 words: 32, 48 or 64 B in all; tag[0] checks the node */
} Node;

enum { CHAIN = 32 };

static uint64_t tag(long chain, long pos) { return (uint64_t)chain * 0x9E3779B1u + (uint64_t)pos; }

static Node *build(long chain) {
  Node *built[CHAIN], *next = NULL;
  for (long i = CHAIN - 1; i >= 0; i--) {
    size_t words = 1 + 2 * (size_t)(rnd() % 3);
    Node *n = checked(GC_MALLOC(sizeof(Node) + words * sizeof(uint64_t)));
    GC_STORE(n->next, next);
    n->chain = (uint32_t)chain;
    n->pos = (uint32_t)i;
    n->tag[0] = tag(chain, i);
    built[i] = n;
    next = n;
  }
  /* Other links point back along the chain (or at the node itself). */
  for (long i = 0; i < CHAIN; i++) GC_STORE(built[i]->other, built[(long)(rnd() % (uint64_t)(i + 1))]);
  return built[0];
}

/* Checks a chain and sums its tags; the explicit-free build frees it (the GC build drops it). */
static uint64_t verify(Node *head, long chain) {
  uint64_t sum = 0;
  long pos = 0;
  for (Node *n = head, *next; n; n = next, pos++) {
    next = n->next;
    if (n->chain != (uint32_t)chain || n->pos != (uint32_t)pos || n->tag[0] != tag(chain, pos)
        || n->other->chain != (uint32_t)chain || n->other->pos > n->pos) {
      fprintf(stderr, "chain %ld: node %ld is corrupt\n", chain, pos);
      exit(3);
    }
    sum += n->tag[0];
    GCSTATS_FREE(n);
  }
  if (pos != CHAIN) { fprintf(stderr, "chain %ld: %ld nodes\n", chain, pos); exit(3); }
  return sum;
}

int main(int argc, char **argv) {
  GC_INIT();
  gcstats_start();
  long mib = argc > 1 ? atol(argv[1]) : 1228, churn = argc > 2 ? atol(argv[2]) : 200;
  long chains = (mib << 20) / (48 * CHAIN);
  if (chains < 1) chains = 1;
  Node **heads = checked(GC_MALLOC(sizeof(Node *) * (size_t)chains));
  for (long c = 0; c < chains; c++) GC_STORE(heads[c], build(c));
  long steps = chains * churn / 100;
  uint64_t sum = 0;
  for (long s = 0; s < steps; s++) {
    long c = (long)(rnd() % (uint64_t)chains);
    sum += verify(heads[c], c);
    GC_STORE(heads[c], build(c));
  }
  for (long c = 0; c < chains; c++) sum += verify(heads[c], c);
  printf("gcbig: mib=%ld chains=%ld nodes=%ld replaced=%ld sum=%llu\n", mib, chains, chains * CHAIN, steps,
         (unsigned long long)sum);
  gcstats_report();
  return 0;
}
