// A multithreaded program written for the Boehm GC: GC_THREADS, so gc.h redirects
// pthread_create/join to GC_pthread_create/join. Workers build linked lists of GC objects and
// hand them to the main thread through a shared (GC_MALLOC'd) mailbox while the main thread and
// the workers force collections; every list received is checked.
#define GC_THREADS
#include <gc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct Cell { struct Cell *next; long v; } Cell;
typedef struct { Cell **slots; int n; long sum; int id; } Work;
enum { THREADS = 4, LISTS = 200, LEN = 500 };

static Cell *list(long seed) {
  Cell *h = NULL;
  for (long i = 0; i < LEN; i++) { Cell *c = GC_MALLOC(sizeof *c); c->v = seed + i; c->next = h; h = c; }
  return h;
}
static long sum(Cell *c) { long s = 0; for (; c; c = c->next) s += c->v; return s; }

static void *worker(void *p) {
  Work *w = p;   // reachable only through the argument (the mailbox is GC memory)
  for (int i = 0; i < LISTS; i++) {
    Cell *garbage = list(-1); (void)garbage;
    w->slots[i] = list(w->id * 1000000L + i);
    if (i % 50 == 0) GC_gcollect();
  }
  long s = 0;
  for (int i = 0; i < LISTS; i++) s += sum(w->slots[i]);
  w->sum = s;
  struct GC_stack_base sb;
  int reg = GC_register_my_thread(&sb);   // already registered by GC_pthread_create
  return reg == GC_DUPLICATE ? w : NULL;
}

int main(void) {
  GC_INIT();
  GC_allow_register_threads();
  pthread_t t[THREADS];
  Work *work[THREADS];
  for (int i = 0; i < THREADS; i++) {
    Work *w = GC_MALLOC(sizeof *w);
    w->slots = GC_MALLOC(sizeof(Cell *) * LISTS);
    w->id = i;
    if (pthread_create(&t[i], NULL, worker, w) != 0) { printf("FAIL pthread_create\n"); return 1; }
  }
  for (int i = 0; i < 20; i++) { Cell *g = list(i); (void)g; GC_gcollect(); }
  for (int i = 0; i < THREADS; i++) {
    void *ret;
    pthread_join(t[i], &ret);
    work[i] = ret;
    if (!ret) { printf("FAIL thread %d: not registered\n", i); return 1; }
  }
  GC_gcollect();
  int bad = 0;
  for (int i = 0; i < THREADS; i++) {
    long s = 0;
    for (int j = 0; j < LISTS; j++) s += sum(work[i]->slots[j]);
    long want = 0;
    for (int j = 0; j < LISTS; j++) for (long k = 0; k < LEN; k++) want += i * 1000000L + j + k;
    if (s != want || work[i]->sum != want) { printf("FAIL thread %d: sum %ld want %ld\n", i, s, want); bad = 1; }
  }
  printf("%d threads x %d lists handed over: %s\n", THREADS, LISTS, bad ? "FAIL" : "ok");
  printf("collections ran: %s\n", GC_get_gc_no() > 0 ? "yes" : "no");
  return bad;
}
