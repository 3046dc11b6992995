/* gcheap: the pause of one collection of a large heap that has just died, for `goalloc bench gc`
 * (written for GoAlloc). With collections disabled, MB megabytes of 64 B scanned objects are
 * allocated as linked lists, every 100th object is copied into a keep array and the lists are
 * dropped; then collections are enabled and GC_gcollect() runs once. Its pause (gcstats.h's
 * max pause: the only collection) is what a collector pays per span of the heap in the pause:
 * a sweep inside the pause grows with the heap, a lazy one does not. Prints a checksum line that
 * does not depend on the collector, then gcstats.h's line.
 * Usage: gcheap [MB]   (default 200) */
#include "gcstats.h"

typedef struct Obj { struct Obj *next; uint64_t tag; uint64_t pad[6]; } Obj;  /* 64 B */

int main(int argc, char **argv) {
  GC_INIT();
  gcstats_start();
  long mb = argc > 1 ? atol(argv[1]) : 200;
  long n = (mb << 20) / (long)sizeof(Obj), lists = 1024;
  GC_disable();
  Obj **heads = checked(GC_MALLOC(sizeof(Obj *) * (size_t)lists));
  for (long i = 0; i < n; i++) {
    Obj *o = checked(GC_MALLOC(sizeof *o));
    o->tag = (uint64_t)i;
    GC_STORE(o->next, heads[i % lists]);
    GC_STORE(heads[i % lists], o);
  }
  long nkeep = n / 100 + 1, k = 0;
  Obj **keep = checked(GC_MALLOC(sizeof(Obj *) * (size_t)nkeep));
  for (long l = 0; l < lists; l++)
    for (Obj *o = heads[l]; o; o = o->next)
      if (o->tag % 100 == 0 && k < nkeep) GC_STORE(keep[k++], o);
  for (long i = 0; i < k; i++) GC_STORE(keep[i]->next, NULL);  /* the kept ones hold nothing else */
  heads = NULL;
  GC_enable();
  GC_gcollect();
  uint64_t sum = 0;
  for (long i = 0; i < k; i++) {
    if (keep[i]->tag % 100 != 0) { fprintf(stderr, "kept object overwritten\n"); return 3; }
    sum += keep[i]->tag;
  }
  printf("gcheap: mb=%ld objects=%ld kept=%ld sum=%llu\n", mb, n, k, (unsigned long long)sum);
  gcstats_report();
  return 0;
}
