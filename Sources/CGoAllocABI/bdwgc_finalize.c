// bdwgc 8.2's finalization and disappearing links (gc.h), on GoAlloc's specials
// (GoAllocCore/MFinal.swift, Weak.swift, MGCSpecialsMark.swift).
//
// Mapping of bdwgc's contracts:
//   GC_register_finalizer          ordered: of two unreachable objects where a points to b, a is
//                                  finalized first (after short links were cleared, so a link
//                                  breaks an order cycle); an object that reaches itself is
//                                  never finalized
//   ..._ignore_self                the same, but words of the object pointing into itself do not
//                                  count
//   ..._no_order                   finalized as soon as unreachable, whatever points to it
//   all three                      one finalizer per object (the last registered; fn 0 removes
//                                  it; the old fn and cd go to *ofn and *ocd); unregistered when
//                                  queued; obj must be the start of a GC_malloc object, else fn
//                                  is ignored and *ofn, *ocd are set to 0; cd is a root; the
//                                  object and what it reaches survive until the finalizer ran
//   running them                   GC_invoke_finalizers, on the calling thread. With
//                                  GC_finalize_on_demand 0 (the default) GC_gcollect and the
//                                  GC_malloc family call it themselves when finalizers are queued
//                                  (not from inside a finalizer); with it set, only the program
//                                  does, and GC_finalizer_notifier is called (by the next
//                                  GC_malloc or GC_gcollect, at most once per cycle) instead
//   GC_general_register_disappearing_link  *link = 0 when obj is found unreachable, before any
//                                  finalization decision; the registration then ends. A link
//                                  inside an object that dies is dropped with it
//   GC_register_long_link          *link = 0 only once obj is freed for good (after finalizers)
//   GC_unregister_*, GC_move_*     as documented (GC_SUCCESS, GC_DUPLICATE, GC_NOT_FOUND)
//   GC_java_finalization           always in effect: what a no_order finalizable object reaches
//                                  is kept for its finalizer
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../include/goalloc.h"

#define EXPORT __attribute__((visibility("default")))
typedef void (*GC_finalization_proc)(void *obj, void *cd);
typedef void (*GC_finalizer_notifier_proc)(void);

// The core (libgoalloc/Exports.swift) and the shim's counters (goalloc_specials.h).
void goalloc_gc_bdwgc_register_finalizer(void *p, const void *fn, void *cd, int order, const void **ofn, void **ocd);
int goalloc_gc_bdwgc_take_finalizer(const void **fn, void **obj, void **cd);
int goalloc_gc_bdwgc_register_link(void *link, const void *obj, int long_link);
int goalloc_gc_bdwgc_unregister_link(void *link, int long_link);
int goalloc_gc_bdwgc_move_link(void *link, void *new_link, int long_link);
uint32_t *goalloc_specials_bdwgc_counters(void);
void *GC_base(void *p);

enum { ORDER_AFTER_LINKS = 2, ORDER_IGNORE_SELF = 4, ORDER_NO_ORDER = 6 };
enum { GC_SUCCESS = 0, GC_DUPLICATE = 1, GC_NOT_FOUND = 4 };

EXPORT int GC_finalize_on_demand;
EXPORT GC_finalizer_notifier_proc GC_finalizer_notifier;
extern int GC_java_finalization;  // (bdwgc.c)

__attribute__((noreturn, cold)) static void bad_arg(const char *line) {
  ssize_t w = write(2, line, strlen(line)); (void)w;
  abort();
}

// ---- Finalizers ----
static void reg(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd, int order) {
  goalloc_gc_bdwgc_register_finalizer(obj, (const void *)fn, cd, order, (const void **)ofn, ocd);
}
EXPORT void GC_register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd) {
  reg(obj, fn, cd, ofn, ocd, ORDER_AFTER_LINKS);
}
EXPORT void GC_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                              void **ocd) {
  reg(obj, fn, cd, ofn, ocd, ORDER_IGNORE_SELF);
}
EXPORT void GC_register_finalizer_no_order(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                           void **ocd) {
  reg(obj, fn, cd, ofn, ocd, ORDER_NO_ORDER);
}
// GC_DEBUG's names: the same objects here (GC_debug_malloc returns the object's start).
EXPORT void GC_debug_register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                        void **ocd) {
  reg(obj, fn, cd, ofn, ocd, ORDER_AFTER_LINKS);
}
EXPORT void GC_debug_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn, void *cd,
                                                    GC_finalization_proc *ofn, void **ocd) {
  reg(obj, fn, cd, ofn, ocd, ORDER_IGNORE_SELF);
}
EXPORT void GC_debug_register_finalizer_no_order(void *obj, GC_finalization_proc fn, void *cd,
                                                 GC_finalization_proc *ofn, void **ocd) {
  reg(obj, fn, cd, ofn, ocd, ORDER_NO_ORDER);
}

/// Whether GC_invoke_finalizers has something to do (no synchronization, as bdwgc says).
EXPORT int GC_should_invoke_finalizers(void) {
  return __atomic_load_n(&goalloc_specials_bdwgc_counters()[0], __ATOMIC_RELAXED) != 0;
}

static __thread int invoking;  // this thread is inside GC_invoke_finalizers (bdwgc nests none)

EXPORT int GC_invoke_finalizers(void) {
  goalloc_gc_register_thread();  // the object is on this stack while its finalizer runs
  int n = 0;
  invoking++;
  const void *fn;
  void *obj, *cd;
  while (goalloc_gc_bdwgc_take_finalizer(&fn, &obj, &cd)) {
    ((GC_finalization_proc)fn)(obj, cd);
    n++;
  }
  invoking--;
  return n;
}

static uint32_t notified_cycles;  // the bdwgc cycle counter the notifier was last called for

/// After GC_malloc and GC_gcollect (bdwgc's GC_notify_or_invoke_finalizers): runs the queued
/// finalizers here, or, with GC_finalize_on_demand, calls the notifier once per cycle.
void goalloc_bdwgc_finalizers_due(void) {
  uint32_t *c = goalloc_specials_bdwgc_counters();
  if (__atomic_load_n(&c[0], __ATOMIC_ACQUIRE) == 0) return;
  if (__atomic_load_n(&GC_finalize_on_demand, __ATOMIC_RELAXED)) {
    uint32_t cycles = __atomic_load_n(&c[1], __ATOMIC_ACQUIRE);
    uint32_t seen = __atomic_load_n(&notified_cycles, __ATOMIC_RELAXED);
    if (cycles == seen || !__atomic_compare_exchange_n(&notified_cycles, &seen, cycles, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      return;
    GC_finalizer_notifier_proc f = __atomic_load_n(&GC_finalizer_notifier, __ATOMIC_ACQUIRE);
    if (f) f();
    return;
  }
  if (invoking == 0) GC_invoke_finalizers();
}

EXPORT void GC_set_finalize_on_demand(int v) { __atomic_store_n(&GC_finalize_on_demand, v, __ATOMIC_RELAXED); }
EXPORT int GC_get_finalize_on_demand(void) { return __atomic_load_n(&GC_finalize_on_demand, __ATOMIC_RELAXED); }
EXPORT void GC_set_finalizer_notifier(GC_finalizer_notifier_proc f) { __atomic_store_n(&GC_finalizer_notifier, f, __ATOMIC_RELEASE); }
EXPORT GC_finalizer_notifier_proc GC_get_finalizer_notifier(void) { return __atomic_load_n(&GC_finalizer_notifier, __ATOMIC_ACQUIRE); }
/// Always in effect here (see above); the value is kept for the program to read.
EXPORT void GC_set_java_finalization(int v) { __atomic_store_n(&GC_java_finalization, v, __ATOMIC_RELAXED); }
EXPORT int GC_get_java_finalization(void) { return __atomic_load_n(&GC_java_finalization, __ATOMIC_RELAXED); }

// ---- Disappearing links ----
#define MISALIGNED(p) (((uintptr_t)(p) & (sizeof(void *) - 1)) != 0)

EXPORT int GC_general_register_disappearing_link(void **link, const void *obj) {
  if (link == NULL || MISALIGNED(link)) bad_arg("goalloc: GC_general_register_disappearing_link: bad link argument (NULL or misaligned)\n");
  return goalloc_gc_bdwgc_register_link(link, obj, 0);
}
EXPORT int GC_register_disappearing_link(void **link) {
  void *base = GC_base(link);
  if (base == NULL) bad_arg("goalloc: GC_register_disappearing_link: link is not inside a GC object\n");
  return GC_general_register_disappearing_link(link, base);
}
EXPORT int GC_unregister_disappearing_link(void **link) {
  if (MISALIGNED(link)) return 0;
  return goalloc_gc_bdwgc_unregister_link(link, 0);
}
EXPORT int GC_move_disappearing_link(void **link, void **new_link) {
  if (new_link == NULL || MISALIGNED(new_link)) bad_arg("goalloc: GC_move_disappearing_link: bad new_link argument (NULL or misaligned)\n");
  if (MISALIGNED(link)) return GC_NOT_FOUND;
  return goalloc_gc_bdwgc_move_link(link, new_link, 0);
}
EXPORT int GC_register_long_link(void **link, const void *obj) {
  if (link == NULL || MISALIGNED(link)) bad_arg("goalloc: GC_register_long_link: bad link argument (NULL or misaligned)\n");
  return goalloc_gc_bdwgc_register_link(link, obj, 1);
}
EXPORT int GC_unregister_long_link(void **link) {
  if (MISALIGNED(link)) return 0;
  return goalloc_gc_bdwgc_unregister_link(link, 1);
}
EXPORT int GC_move_long_link(void **link, void **new_link) {
  if (new_link == NULL || MISALIGNED(new_link)) bad_arg("goalloc: GC_move_long_link: bad new_link argument (NULL or misaligned)\n");
  if (MISALIGNED(link)) return GC_NOT_FOUND;
  return goalloc_gc_bdwgc_move_link(link, new_link, 1);
}
