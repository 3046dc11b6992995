// Does taking a call stack inside the allocator allocate? This program defines malloc, calloc,
// realloc and free itself, forwarding to the next definition (libgoalloc.so, preloaded) and
// counting the calls made from libgcc_s, the unwinder. Run it with GOALLOC_DEBUG=allocfreetrace=FILE,
// tracestack=1,memprofile=FILE,memprofilerate=1: every allocation is unwound, in the main
// thread, in new threads and after a dlopen has changed the set of loaded objects. Prints
// "unwinder mallocs N" and "own allocations M".
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static int unwinder_calls, own;
static char bootstrap[4096];  // for dlsym's own calloc while the names are being resolved
static size_t bootstrap_used;
static uintptr_t gcc_lo, gcc_hi;

static void resolve(void) {
  if (next_malloc) return;
  next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
}

static void note(void *caller) {
  uintptr_t c = (uintptr_t)caller;
  if (gcc_hi && c >= gcc_lo && c < gcc_hi) __atomic_add_fetch(&unwinder_calls, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n) {
  if (!next_malloc) {
    if (bootstrap_used + n > sizeof bootstrap) return 0;
    void *p = bootstrap + bootstrap_used;
    bootstrap_used += (n + 15) & ~(size_t)15;
    resolve();
    return p;
  }
  note(__builtin_return_address(0));
  return next_malloc(n);
}
void *calloc(size_t n, size_t s) {
  if (!next_calloc) { void *p = malloc(n * s); if (p) memset(p, 0, n * s); return p; }
  note(__builtin_return_address(0));
  return next_calloc(n, s);
}
void *realloc(void *p, size_t n) {
  resolve();
  note(__builtin_return_address(0));
  return next_realloc(p, n);
}
void free(void *p) {
  if ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof bootstrap) return;
  resolve();
  note(__builtin_return_address(0));
  next_free(p);
}

static int span_of(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  if ((uintptr_t)info->dlpi_addr != (uintptr_t)arg) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type != PT_LOAD) continue;
    if (!gcc_lo || a < gcc_lo) gcc_lo = a;
    if (a + ph->p_memsz > gcc_hi) gcc_hi = a + ph->p_memsz;
  }
  return 1;
}

/// The address range of libgcc_s, the unwinder's object.
static void find_libgcc(void) {
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "_Unwind_Backtrace");
  if (!sym || !dladdr(sym, &info)) return;
  dl_iterate_phdr(span_of, info.dli_fbase);
}

__attribute__((noinline)) static void *deep(int depth, size_t n) {
  if (depth == 0) { own++; return malloc(n); }
  void *p = deep(depth - 1, n + 8);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) free(deep(i % 7, 24 + (size_t)i));
  return 0;
}

int main(void) {
  resolve();
  find_libgcc();
  for (int i = 0; i < 200; i++) free(deep(i % 9, 32 + (size_t)i));
  void *m = dlopen("libm.so.6", RTLD_NOW);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, worker, 0);
  for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
  for (int i = 0; i < 200; i++) free(deep(i % 5, 48 + (size_t)i));
  if (m) dlclose(m);
  printf("unwinder mallocs %d\nown allocations %d\n", unwinder_calls, own + 800);
  return 0;
}
