// C++ operator new/delete under libgoalloc.so: every variant binds to the library's own export
// (not libstdc++'s), each one changes GoAlloc's Mallocs/Frees, aligned new is aligned, and the
// failure contract holds: the new_handler loop runs, std::bad_alloc is thrown through the
// library's frames and caught, nothrow forms return nullptr. Prints "ok" lines; exits 1 after a
// "FAIL" line.
#include <dlfcn.h>
#include <cstdint>
#include <cstdio>
#include <new>
#include <goalloc.h>  // -I include (the repository's)

/// libgoalloc.so's own handle (found through one of its exports: it has no SONAME to name).
static void *goalloc_handle(void) {
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "goalloc_read_memstats");
  if (!sym || !dladdr(sym, &info)) return 0;
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
}

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { std::printf("FAIL %s: ", #cond); std::printf(__VA_ARGS__); std::printf("\n"); failures++; } } while (0)

static void (*read_stats)(goalloc_memstats *);
static uint64_t mallocs() { goalloc_memstats m; read_stats(&m); return m.mallocs; }
static uint64_t frees() { goalloc_memstats m; read_stats(&m); return m.frees; }

struct alignas(256) Wide { char bytes[300]; };
static int handler_calls;
static void handler() { handler_calls++; std::set_new_handler(nullptr); }

int main() {
  void *lib = goalloc_handle();
  if (!lib) { std::printf("FAIL libgoalloc.so is not loaded\n"); return 1; }
  read_stats = (void (*)(goalloc_memstats *))dlsym(lib, "goalloc_read_memstats");
  const char *names[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
  };
  int bound = 0;
  for (const char *n : names) {
    void *global = dlsym(RTLD_DEFAULT, n), *ours = dlsym(lib, n);
    CHECK(ours && global == ours, "%s resolves to %p, libgoalloc.so's is %p", n, global, ours);
    bound += ours && global == ours;
  }
  std::printf("ok %d of %d operators bound to libgoalloc.so\n", bound, (int)(sizeof names / sizeof *names));

  uint64_t m0 = mallocs(), f0 = frees();
  int *one = new int(7);
  int *many = new int[100];
  Wide *w = new Wide;
  Wide *ws = new Wide[3];
  int *nt = new (std::nothrow) int(1);
  CHECK(mallocs() - m0 >= 5, "5 news counted as GoAlloc mallocs: %llu", (unsigned long long)(mallocs() - m0));
  CHECK(reinterpret_cast<uintptr_t>(w) % 256 == 0 && reinterpret_cast<uintptr_t>(ws) % 256 == 0, "alignas(256): %p %p", (void *)w, (void *)ws);
  delete one;
  delete[] many;
  delete w;
  delete[] ws;
  ::operator delete(nt, sizeof(int));  // sized delete
  CHECK(frees() - f0 >= 5, "5 deletes counted as GoAlloc frees: %llu", (unsigned long long)(frees() - f0));
  std::printf("ok new/delete go to GoAlloc (%llu mallocs, %llu frees)\n",
              (unsigned long long)(mallocs() - m0), (unsigned long long)(frees() - f0));

  const size_t huge = size_t(1) << 62;
  bool caught = false;
  try {
    void *p = ::operator new(huge);
    std::printf("FAIL operator new(2^62) returned %p\n", p);
    failures++;
  } catch (const std::bad_alloc &) {
    caught = true;
  }
  CHECK(caught, "std::bad_alloc from operator new(2^62)");
  caught = false;
  try {
    void *p = ::operator new(huge, std::align_val_t(64));
    std::printf("FAIL aligned operator new(2^62) returned %p\n", p);
    failures++;
  } catch (const std::bad_alloc &) {
    caught = true;
  }
  CHECK(caught, "std::bad_alloc from aligned operator new(2^62)");
  CHECK(::operator new(huge, std::nothrow) == nullptr, "nothrow new returns nullptr");
  CHECK(::operator new[](huge, std::align_val_t(32), std::nothrow) == nullptr, "nothrow aligned new[] returns nullptr");
  std::set_new_handler(handler);
  caught = false;
  try { (void)::operator new(huge); } catch (const std::bad_alloc &) { caught = true; }
  CHECK(caught && handler_calls == 1, "the new_handler ran once (%d), then bad_alloc", handler_calls);
  std::printf("ok failure contract: bad_alloc, nothrow nullptr, new_handler\n");
  return failures ? 1 : 0;
}
