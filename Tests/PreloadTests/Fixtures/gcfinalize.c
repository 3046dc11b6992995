// bdwgc's finalization and disappearing links, run on bdwgc itself and under libgoalloc.so: the
// output must be the same. Every line is a yes/no fact reached with bounded retries (two
// conservative collectors may keep a stale pointer for a different number of cycles).
#include <gc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct obj {
  struct obj *next;
  const char *name;
  void *pad[2];
};

static char order[64];
static int nfin, batches[8], batch;
static void note(void *o, void *cd) {
  (void)cd;
  struct obj *x = o;
  size_t n = strlen(order);
  if (n + 2 < sizeof order) { order[n] = x->name[0]; order[n + 1] = 0; }
  nfin++;
  if (batch < 8) batches[batch]++;
}

__attribute__((noinline)) static void clear_stack(void) {
  volatile char buf[16 * 1024];
  memset((char *)buf, 0, sizeof buf);
}
/// Collects and invokes the queued finalizers (finalize_on_demand is set) until `want` ran or
/// 20 rounds passed; batches[k] counts the finalizers run by round k.
static void run_until(int want) {
  batch = 0;
  memset(batches, 0, sizeof batches);
  for (int i = 0; i < 20 && nfin < want; i++) {
    clear_stack();
    GC_gcollect();
    int before = nfin;
    GC_invoke_finalizers();
    if (nfin > before) batch++;
  }
}
static const char *yes(int c) { return c ? "yes" : "no"; }

__attribute__((noinline)) static struct obj *mk(const char *name) {
  struct obj *o = GC_MALLOC(sizeof *o);
  o->name = name;
  return o;
}

__attribute__((noinline)) static void chain(void (*reg)(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **)) {
  struct obj *a = mk("a"), *b = mk("b");
  a->next = b;
  reg(b, note, NULL, NULL, NULL);
  reg(a, note, NULL, NULL, NULL);
}
__attribute__((noinline)) static void self_cycle(void (*reg)(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **)) {
  struct obj *s = mk("s");
  s->next = s;
  reg(s, note, NULL, NULL, NULL);
}

static void *weak_link, *long_link;  // hidden pointers (GC_HIDE_POINTER), cleared by the collector
static int link_gone_in_finalizer = -1, long_set_in_finalizer = -1;
static void check_links(void *o, void *cd) {
  (void)o; (void)cd;
  link_gone_in_finalizer = weak_link == NULL;
  long_set_in_finalizer = long_link != NULL;
  nfin++;
}
__attribute__((noinline)) static void linked(void) {
  struct obj *x = mk("x");
  weak_link = (void *)GC_HIDE_POINTER(x);
  long_link = (void *)GC_HIDE_POINTER(x);
  GC_general_register_disappearing_link(&weak_link, x);
  GC_register_long_link(&long_link, x);
  GC_register_finalizer(x, check_links, NULL, NULL, NULL);
}

static int notified;
static void notifier(void) { notified++; }

static void *kept;  // a root
static void *link_a, *link_b;

/// Registration results; leaves link_b registered to `kept` (allocated here, so that no frame
/// of main holds it).
__attribute__((noinline)) static void link_calls(void) {
  kept = mk("l");
  link_a = (void *)GC_HIDE_POINTER(kept);
  printf("register: %d\n", GC_general_register_disappearing_link(&link_a, kept));
  printf("register again: %d\n", GC_general_register_disappearing_link(&link_a, kept));
  printf("move to itself: %d\n", GC_move_disappearing_link(&link_a, &link_a));
  printf("move: %d\n", GC_move_disappearing_link(&link_a, &link_b));
  printf("move from the old place: %d\n", GC_move_disappearing_link(&link_a, &link_b));
  printf("unregister the old place: %d\n", GC_unregister_disappearing_link(&link_a));
  printf("unregister: %d\n", GC_unregister_disappearing_link(&link_b));
  printf("unregister again: %d\n", GC_unregister_disappearing_link(&link_b));
  link_b = (void *)GC_HIDE_POINTER(kept);
  GC_general_register_disappearing_link(&link_b, kept);
}

/// GC_register_finalizer's old fn and cd (on `kept`, allocated here).
__attribute__((noinline)) static void replacements(void) {
  GC_finalization_proc ofn = NULL;
  void *ocd = NULL;
  kept = mk("k");
  GC_register_finalizer(kept, note, (void *)1, &ofn, &ocd);
  printf("first registration: old fn %s\n", ofn == NULL ? "none" : "set");
  GC_register_finalizer(kept, note, (void *)2, &ofn, &ocd);
  printf("replaced: old fn %s, old cd %d\n", ofn == note ? "note" : "other", (int)(intptr_t)ocd);
  GC_register_finalizer(kept, 0, NULL, &ofn, &ocd);
  printf("removed: old cd %d\n", (int)(intptr_t)ocd);
  int stack_var = 0;
  GC_register_finalizer(&stack_var, note, NULL, &ofn, &ocd);
  printf("outside the heap: old fn %s\n", ofn == NULL && ocd == NULL ? "none" : "set");
  kept = NULL;
}

int main(void) {
  GC_INIT();
  GC_set_finalize_on_demand(1);
  printf("finalize_on_demand: %d\n", GC_get_finalize_on_demand());

  chain(GC_register_finalizer);
  run_until(2);
  printf("ordered chain: %s, in two rounds: %s\n", order, yes(batches[0] == 1 && batches[1] == 1));

  order[0] = 0; nfin = 0;
  chain(GC_register_finalizer_no_order);
  run_until(2);
  printf("no_order chain: both in one round: %s\n", yes(nfin == 2 && batches[0] == 2));

  order[0] = 0; nfin = 0;
  self_cycle(GC_register_finalizer);
  run_until(1);
  printf("ordered self-cycle finalized: %s\n", yes(nfin > 0));
  order[0] = 0; nfin = 0;
  self_cycle(GC_register_finalizer_ignore_self);
  run_until(1);
  printf("ignore_self self-cycle finalized: %s\n", yes(nfin == 1));

  replacements();

  nfin = 0;
  linked();
  run_until(1);
  printf("short link cleared before the finalizer: %s\n", yes(link_gone_in_finalizer == 1));
  printf("long link still set in the finalizer: %s\n", yes(long_set_in_finalizer == 1));
  for (int i = 0; i < 20 && long_link != NULL; i++) { clear_stack(); GC_gcollect(); GC_invoke_finalizers(); }
  printf("long link cleared once the object is gone: %s\n", yes(long_link == NULL));

  link_calls();
  for (int i = 0; i < 3; i++) { clear_stack(); GC_gcollect(); }
  printf("a link to a reachable object stays: %s\n", yes(link_b != NULL));
  kept = NULL;
  for (int i = 0; i < 20 && link_b != NULL; i++) { clear_stack(); GC_gcollect(); }
  printf("and is cleared once it is unreachable: %s\n", yes(link_b == NULL));

  GC_set_finalizer_notifier(notifier);
  printf("notifier set: %s\n", yes(GC_get_finalizer_notifier() == notifier));
  nfin = 0;
  chain(GC_register_finalizer_no_order);
  int should = 0;
  for (int i = 0; i < 20 && !should; i++) { clear_stack(); GC_gcollect(); should = GC_should_invoke_finalizers(); }
  printf("should_invoke after a collection: %s, notified: %s\n", yes(should), yes(notified > 0));
  int ran = GC_invoke_finalizers();
  printf("invoke ran them: %s, nothing left: %s\n", yes(ran > 0), yes(!GC_should_invoke_finalizers()));

  // Without finalize_on_demand the collector runs them itself.
  GC_set_finalize_on_demand(0);
  nfin = 0;
  chain(GC_register_finalizer_no_order);
  for (int i = 0; i < 20 && nfin < 2; i++) { clear_stack(); GC_gcollect(); }
  printf("run by GC_gcollect itself: %s\n", yes(nfin == 2));
  return 0;
}
