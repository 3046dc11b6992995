/* gcchurn: list and graph churn for `goalloc bench gc` (written for GoAlloc). A live set of
 * LISTS linked lists (nodes of 40-248 B, scanned, each with a pointer-free payload string of
 * 8-120 B and a link to a random earlier node of its list: a graph) is churned STEPS times: a
 * random list is replaced by a new one of random length, so the old one becomes garbage, unless
 * one of the RECENT slots (a ring of random nodes of recently built lists) still reaches it.
 * Every list is checked as it is replaced. Prints a checksum line that does not depend on the
 * collector, then gcstats.h's line.
 * Usage: gcchurn [STEPS] [LISTS]   (default 400000 4096) */
#include "gcstats.h"
#include <string.h>

typedef struct Node {
  struct Node *next, *cross;
  char *payload;
  uint32_t len, list;
  uint64_t tag;
  char pad[];  /* 0-208 B more, so nodes span several size classes */
} Node;

static Node **lists, **recent;
static long nlists;
enum { RECENT = 1024 };

static Node *build(long list, long len) {
  Node *head = NULL;
  for (long i = 0; i < len; i++) {
    size_t extra = (size_t)(rnd() % 27) * 8;
    Node *n = checked(GC_MALLOC(sizeof(Node) + extra));
    n->len = (uint32_t)(8 + rnd() % 113);
    GC_STORE(n->payload, checked(GC_MALLOC_ATOMIC(n->len)));
    memset(n->payload, (int)(list & 0x7f), n->len);
    n->list = (uint32_t)list;
    n->tag = (uint64_t)list * 1000003u + (uint64_t)i;
    GC_STORE(n->next, head);
    Node *cross = head;
    for (Node *c = head; c && rnd() % 4 != 0; c = c->next) cross = c;
    GC_STORE(n->cross, cross);  /* an earlier node */
    head = n;
    if (rnd() % 16 == 0) GC_STORE(recent[rnd() % RECENT], n);  /* keeps this list a while longer */
  }
  return head;
}

static long verify(Node *head, long list) {
  long count = 0, bad = 0;
  for (Node *n = head; n; n = n->next, count++) {
    if (n->list != (uint32_t)list || n->payload[0] != (char)(list & 0x7f) || n->payload[n->len - 1] != (char)(list & 0x7f)) bad++;
    if (n->cross && n->cross->list != (uint32_t)list) bad++;
  }
  if (bad) { fprintf(stderr, "list %ld: %ld bad nodes\n", list, bad); exit(3); }
  return count;
}

int main(int argc, char **argv) {
  GC_INIT();
  gcstats_start();
  long steps = argc > 1 ? atol(argv[1]) : 400000;
  nlists = argc > 2 ? atol(argv[2]) : 4096;
  lists = checked(GC_MALLOC(sizeof(Node *) * (size_t)nlists));
  recent = checked(GC_MALLOC(sizeof(Node *) * RECENT));
  for (long i = 0; i < nlists; i++) GC_STORE(lists[i], build(i, 1 + (long)(rnd() % 64)));
  long checked_nodes = 0;
  for (long s = 0; s < steps; s++) {
    long i = (long)(rnd() % (uint64_t)nlists);
    checked_nodes += verify(lists[i], i);
    GC_STORE(lists[i], build(i, 1 + (long)(rnd() % 64)));
  }
  for (long i = 0; i < nlists; i++) checked_nodes += verify(lists[i], i);
  printf("gcchurn: steps=%ld lists=%ld nodes=%ld\n", steps, nlists, checked_nodes);
  gcstats_report();
  return 0;
}
