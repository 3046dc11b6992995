// The libc names of the allocator, with default visibility, and the library's constructor.
//
// Swift exports its public symbols from a shared library with *protected* visibility; for
// `malloc` and `free` that makes the dynamic loader warn ("direct reference to protected function
// ... may break pointer equality") in every non-PIE program that takes their address (gcc's cc1
// does). So the libc names live here, in C, as one-jump trampolines to the Swift entry points in
// Sources/libgoalloc/Exports.swift. This target is linked into libgoalloc.so only; it also holds
// the library's constructor.
#include <stddef.h>

void *goalloc_malloc(size_t);
void goalloc_free(void *);
void *goalloc_calloc(size_t, size_t);
void *goalloc_realloc(void *, size_t);
void *goalloc_reallocarray(void *, size_t, size_t);
int goalloc_posix_memalign(void **, size_t, size_t);
void *goalloc_aligned_alloc(size_t, size_t);
void *goalloc_memalign(size_t, size_t);
void *goalloc_valloc(size_t);
void *goalloc_pvalloc(size_t);
size_t goalloc_malloc_usable_size(void *);
int goalloc_malloc_trim(size_t);
int goalloc_mallopt(int, int);

#define EXPORT __attribute__((visibility("default")))
// The two hottest are bare jumps (a C body would set up a frame pointer first).
#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__x86_64__)
#define JUMP(target) __asm__("jmp " #target)
#else
#define JUMP(target) __asm__("b " #target)
#endif
EXPORT __attribute__((naked)) void *malloc(size_t n) { JUMP(goalloc_malloc); }
EXPORT __attribute__((naked)) void free(void *p) { JUMP(goalloc_free); }
#else
EXPORT void *malloc(size_t n) { return goalloc_malloc(n); }
EXPORT void free(void *p) { goalloc_free(p); }
#endif
EXPORT void *calloc(size_t n, size_t s) { return goalloc_calloc(n, s); }
EXPORT void *realloc(void *p, size_t n) { return goalloc_realloc(p, n); }
EXPORT void *reallocarray(void *p, size_t n, size_t s) { return goalloc_reallocarray(p, n, s); }
EXPORT int posix_memalign(void **out, size_t a, size_t n) { return goalloc_posix_memalign(out, a, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { return goalloc_aligned_alloc(a, n); }
EXPORT void *memalign(size_t a, size_t n) { return goalloc_memalign(a, n); }
EXPORT void *valloc(size_t n) { return goalloc_valloc(n); }
EXPORT void *pvalloc(size_t n) { return goalloc_pvalloc(n); }
EXPORT size_t malloc_usable_size(void *p) { return goalloc_malloc_usable_size(p); }
EXPORT int malloc_trim(size_t pad) { return goalloc_malloc_trim(pad); }
EXPORT int mallopt(int param, int value) { return goalloc_mallopt(param, value); }

// The library's constructor: libc is ready from here on, so the heap is set up and GOALLOC_DEBUG
// read now, even in a program that has not allocated yet (Exports.swift).
// Then the unwind entries of the library's Swift code are registered (unwind.c), so call stacks
// taken inside the allocator reach the program's frames; the re-entry guard keeps the
// registration's own allocations (libgcc sorts the table) from unwinding.
void goalloc_on_load(void);
int goalloc_unwind_register_self(void);
int goalloc_backtrace_guard(int on);
__attribute__((constructor)) static void goalloc_library_init(void) {
  goalloc_on_load();
  int was = goalloc_backtrace_guard(1);
  goalloc_unwind_register_self();
  goalloc_backtrace_guard(was);
}
