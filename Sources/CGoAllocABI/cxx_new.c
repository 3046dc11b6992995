// C++'s operator new and delete, exported under their mangled names so a C++ program's
// allocations reach GoAlloc without passing through libstdc++'s wrappers (as tcmalloc and
// mimalloc do). Every variant: plain, array, nothrow, aligned (std::align_val_t), sized delete.
//
// C++'s contract without linking libstdc++: the library must not depend on libstdc++ (a C
// program would load it), and C cannot throw. On failure, the throwing forms loop as the
// standard says: while std::get_new_handler() returns a handler, call it and retry; with no
// handler they throw std::bad_alloc through std::__throw_bad_alloc(). Both are libstdc++
// functions reached through weak references, so they resolve in every process that has
// libstdc++ loaded, which is every process that calls operator new through C++ code. The
// exception unwinds through this file's frames (compiled with unwind tables, no cleanups
// needed). Should neither be present (operator new called from a program without libstdc++),
// the process stops with one line on stderr. The nothrow forms run the same handler loop and
// return NULL at the end; delete is free (the size and alignment are not needed: the span
// knows both).
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

void *goalloc_malloc(size_t);
void goalloc_free(void *);
void *goalloc_aligned_alloc(size_t, size_t);

typedef void (*new_handler)(void);
new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));  // std::get_new_handler()
void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));  // std::__throw_bad_alloc()

#define EXPORT __attribute__((visibility("default")))

static void *attempt(size_t size, size_t align) {
  if (size == 0) size = 1;  // distinct non-null pointers for zero-size requests
  return align ? goalloc_aligned_alloc(align, (size + align - 1) & ~(align - 1)) : goalloc_malloc(size);
}

/// The standard's loop: NULL only once no new_handler is installed.
static void *with_handler(size_t size, size_t align) {
  for (;;) {
    void *p = attempt(size, align);
    if (p) return p;
    new_handler h = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : 0;
    if (!h) return 0;
    h();
  }
}

__attribute__((noinline)) static void *new_or_throw(size_t size, size_t align) {
  void *p = with_handler(size, align);
  if (p) return p;
  if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
  static const char msg[] = "goalloc: operator new: out of memory and no libstdc++ to throw std::bad_alloc\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  abort();
}

static void *new_fast(size_t size, size_t align) {
  void *p = attempt(size, align);
  return p ? p : new_or_throw(size, align);
}

// align_val_t is an enum of size_t; a bad (non power of two) alignment is undefined behaviour
// in C++, and the aligned allocator answers it with NULL, hence bad_alloc.
EXPORT void *_Znwm(size_t n) { return new_fast(n, 0); }                                    // new(size_t)
EXPORT void *_Znam(size_t n) { return new_fast(n, 0); }                                    // new[](size_t)
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return with_handler(n, 0); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return with_handler(n, 0); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) { return new_fast(n, a); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) { return new_fast(n, a); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) { (void)t; return with_handler(n, a); }
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) { (void)t; return with_handler(n, a); }

EXPORT void _ZdlPv(void *p) { goalloc_free(p); }                                            // delete(void*)
EXPORT void _ZdaPv(void *p) { goalloc_free(p); }
EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; goalloc_free(p); }                        // sized
EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; goalloc_free(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; goalloc_free(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; goalloc_free(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; goalloc_free(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; goalloc_free(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; goalloc_free(p); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; goalloc_free(p); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a; (void)t; goalloc_free(p); }
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a; (void)t; goalloc_free(p); }
