// bdwgc's thread API (gc.h under GC_THREADS, gc_pthread_redirects.h) on GoAlloc's collector.
// GoAlloc registers every thread that allocates and stops threads blocked in system calls, so:
//   GC_pthread_create   registers the new thread before its start routine runs (its argument is
//                       kept in an uncollectable object until then), unregisters it at its end
//   GC_register_my_thread / GC_unregister_my_thread   goalloc_gc_register/unregister_thread;
//                       GC_DUPLICATE for the main thread (registered by GC_init in bdwgc) and for
//                       a thread that registered itself already
//   GC_do_blocking, GC_call_with_gc_active   call the function directly
//   GC_pthread_join, _detach, _cancel, _sigmask, _exit, GC_dlopen   the libc calls
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <unistd.h>
#include "../../include/goalloc.h"

#define EXPORT __attribute__((visibility("default")))
#define GC_SUCCESS 0
#define GC_DUPLICATE 1
#define GC_UNIMPLEMENTED 3

struct GC_stack_base { void *mem_base; };
typedef void *(*GC_fn_type)(void *);
typedef void *(*GC_stack_base_func)(struct GC_stack_base *, void *);

static __thread int self_registered;

static int is_main_thread(void) { return getpid() == gettid(); }

EXPORT void GC_allow_register_threads(void) {}

EXPORT int GC_register_my_thread(const struct GC_stack_base *sb) {
  (void)sb;  // GoAlloc finds the stack's top from the thread's stack mapping
  if (self_registered || is_main_thread()) { goalloc_gc_register_thread(); return GC_DUPLICATE; }
  if (goalloc_gc_register_thread() != 0) return GC_UNIMPLEMENTED;
  self_registered = 1;
  return GC_SUCCESS;
}

EXPORT int GC_unregister_my_thread(void) {
  self_registered = 0;
  goalloc_gc_unregister_thread();
  return GC_SUCCESS;
}

EXPORT int GC_thread_is_registered(void) {
  // Registered here: by the calls above, by GC_pthread_create, or the main thread. (GoAlloc also
  // registers any thread that allocates, which this does not see.)
  return self_registered || is_main_thread();
}

/// The base (highest address) of the calling thread's stack: GC_SUCCESS, or GC_UNIMPLEMENTED.
EXPORT int GC_get_stack_base(struct GC_stack_base *sb) {
  pthread_attr_t a;
  void *addr; size_t size;
  if (pthread_getattr_np(pthread_self(), &a) != 0) return GC_UNIMPLEMENTED;
  int r = pthread_attr_getstack(&a, &addr, &size);
  pthread_attr_destroy(&a);
  if (r != 0) return GC_UNIMPLEMENTED;
  sb->mem_base = (char *)addr + size;
  return GC_SUCCESS;
}

EXPORT void *GC_call_with_stack_base(GC_stack_base_func fn, void *arg) {
  struct GC_stack_base sb;
  if (GC_get_stack_base(&sb) != GC_SUCCESS) sb.mem_base = __builtin_frame_address(0);
  return fn(&sb, arg);
}

/// A thread in a blocking call is still stopped and scanned by GoAlloc: nothing to switch.
EXPORT void *GC_do_blocking(GC_fn_type fn, void *arg) { return fn(arg); }
EXPORT void *GC_call_with_gc_active(GC_fn_type fn, void *arg) { return fn(arg); }

// A thread started by GC_pthread_create runs `trampoline` with a `start` record: an
// uncollectable object (scanned, a root until freed) that keeps the argument alive until the
// thread has it, and then the thread's result until GC_pthread_join hands it over, as bdwgc
// keeps a result in its (scanned) thread table. A detached thread's record goes at its end.
enum { RUNNING = 0, FINISHED = 1, DETACHED = 2 };
#define START_MAGIC 0x676f616c6c6f6354ULL
struct start {
  unsigned long long magic;
  void *(*fn)(void *);
  void *arg;
  void *result;
  pthread_t thread;
  int state;   // RUNNING, FINISHED or DETACHED, under `records_lock`
  struct start *prev, *next;   // the list of records not yet joined or freed
};
static __thread struct start *current;
static pthread_mutex_t records_lock = PTHREAD_MUTEX_INITIALIZER;
static struct start *records;

/// Links s (records_lock held).
static void link_record(struct start *s) {
  s->prev = NULL; s->next = records;
  if (records) records->prev = s;
  records = s;
}
/// Unlinks s (records_lock held) and frees it.
static void drop_record(struct start *s) {
  if (s->prev) s->prev->next = s->next; else records = s->next;
  if (s->next) s->next->prev = s->prev;
  s->magic = 0;
  goalloc_gc_free(s);
}

/// The record's end: freed when the thread was detached, else kept for GC_pthread_join.
static void *finish(struct start *s, void *result) {
  s->result = result;
  self_registered = 0;
  current = NULL;
  pthread_mutex_lock(&records_lock);
  int detached = s->state == DETACHED;
  if (detached) drop_record(s); else s->state = FINISHED;
  pthread_mutex_unlock(&records_lock);
  return detached ? result : s;   // pthread_join's value: GC_pthread_join unwraps it
}

static void *trampoline(void *p) {
  goalloc_gc_register_thread();
  self_registered = 1;
  struct start *s = p;
  current = s;
  return finish(s, s->fn(s->arg));
}

EXPORT int GC_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
  struct start *s = goalloc_gc_malloc_uncollectable(sizeof *s);
  if (s == NULL) return 11;  // EAGAIN
  s->magic = START_MAGIC;
  s->fn = fn;
  s->arg = arg;
  int ds = PTHREAD_CREATE_JOINABLE;
  if (attr) pthread_attr_getdetachstate(attr, &ds);
  s->state = ds == PTHREAD_CREATE_DETACHED ? DETACHED : RUNNING;
  pthread_mutex_lock(&records_lock);   // held until s->thread is set: the thread may end at once
  link_record(s);
  int r = pthread_create(&s->thread, attr, trampoline, s);
  if (r != 0) drop_record(s);
  pthread_mutex_unlock(&records_lock);
  if (r != 0) return r;
  *t = s->thread;
  return 0;
}

/// The record a joined thread returned, or NULL when `r` is not one (a thread not started by
/// GC_pthread_create, or one that ended in plain pthread_exit).
static struct start *record(void *r, pthread_t t) {
  if (r == NULL || r == PTHREAD_CANCELED || goalloc_gc_base(r) != r) return NULL;
  struct start *s = r;
  return s->magic == START_MAGIC && pthread_equal(s->thread, t) ? s : NULL;
}

EXPORT int GC_pthread_join(pthread_t t, void **ret) {
  void *r = NULL;
  int e = pthread_join(t, &r);
  if (e != 0) return e;
  struct start *s = record(r, t);
  if (s) {
    r = s->result;
    pthread_mutex_lock(&records_lock);
    drop_record(s);
    pthread_mutex_unlock(&records_lock);
  }
  if (ret) *ret = r;
  return 0;
}
/// Detaching a thread started here frees its record at its end (or now, when it has ended; the
/// result is then dropped, as pthread_detach drops it).
EXPORT int GC_pthread_detach(pthread_t t) {
  int e = pthread_detach(t);
  if (e != 0) return e;
  pthread_mutex_lock(&records_lock);
  for (struct start *s = records; s; s = s->next) {
    if (!pthread_equal(s->thread, t) || s->state == DETACHED) continue;
    if (s->state == FINISHED) drop_record(s); else s->state = DETACHED;
    break;
  }
  pthread_mutex_unlock(&records_lock);
  return 0;
}
EXPORT int GC_pthread_cancel(pthread_t t) { return pthread_cancel(t); }
EXPORT void GC_pthread_exit(void *ret) {
  struct start *s = current;
  if (s) pthread_exit(finish(s, ret));
  self_registered = 0;
  pthread_exit(ret);
}
/// GoAlloc's stop signal is unblocked again by each thread's next allocation; a thread that
/// keeps it blocked delays collections (with a warning line), as goalloc.h says.
EXPORT int GC_pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
  return pthread_sigmask(how, set, old);
}
/// Libraries loaded later are found by the next collection (dl_iterate_phdr).
EXPORT void *GC_dlopen(const char *path, int mode) { return dlopen(path, mode); }
/// Marking runs on the collecting thread in stage 1: no marker threads to start.
EXPORT void GC_start_mark_threads(void) {}
