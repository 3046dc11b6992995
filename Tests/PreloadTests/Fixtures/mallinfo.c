// mallinfo2, mallinfo, malloc_stats and malloc_info under libgoalloc.so: each figure against
// GoAlloc's MemStats read right before and after (this program has one thread, so nothing
// allocates in between), and each entry point resolved to libgoalloc.so. Prints "ok" lines;
// exits 1 after a "FAIL" line.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <goalloc.h>  // -I include (the repository's)

/// libgoalloc.so's own handle (found through one of its exports: it has no SONAME to name).
static void *goalloc_handle(void) {
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "goalloc_read_memstats");
  if (!sym || !dladdr(sym, &info)) return 0;
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
}

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL %s: ", #cond); printf(__VA_ARGS__); printf("\n"); failures++; } } while (0)

int main(void) {
  void *lib = goalloc_handle();
  if (!lib) { printf("FAIL libgoalloc.so is not loaded\n"); return 1; }
  const char *names[] = { "mallinfo", "mallinfo2", "malloc_stats", "malloc_info" };
  for (int i = 0; i < 4; i++) {
    void *global = dlsym(RTLD_DEFAULT, names[i]), *ours = dlsym(lib, names[i]);
    CHECK(ours && global == ours, "%s resolves to %p, libgoalloc.so's is %p", names[i], global, ours);
  }
  void (*read_stats)(struct goalloc_memstats *) = (void (*)(struct goalloc_memstats *))dlsym(lib, "goalloc_read_memstats");
  if (!read_stats) { printf("FAIL no goalloc_read_memstats\n"); return 1; }

  void *blocks[300];
  for (int i = 0; i < 300; i++) blocks[i] = malloc(16 + (size_t)i * 37);
  void *big = malloc(1 << 20);
  for (int i = 0; i < 300; i += 2) free(blocks[i]);

  struct goalloc_memstats m;
  read_stats(&m);
  struct mallinfo2 a = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo b = mallinfo();
#pragma GCC diagnostic pop
  uint64_t held = m.heap_sys - m.heap_released;
  CHECK(a.uordblks == m.heap_alloc, "uordblks %zu, HeapAlloc %llu", a.uordblks, (unsigned long long)m.heap_alloc);
  CHECK(a.arena == held, "arena %zu, HeapSys - HeapReleased %llu", a.arena, (unsigned long long)held);
  CHECK(a.fordblks == held - m.heap_alloc, "fordblks %zu", a.fordblks);
  CHECK(a.keepcost == m.heap_idle - m.heap_released, "keepcost %zu", a.keepcost);
  CHECK(a.hblks == m.large_allocs - m.large_frees && a.hblks >= 1, "hblks %zu", a.hblks);
  CHECK(a.ordblks == m.spans_in_use && a.ordblks > 0, "ordblks %zu", a.ordblks);
  CHECK(a.uordblks >= (1 << 20), "the live 1 MiB block is counted: %zu", a.uordblks);
  CHECK((size_t)b.uordblks == a.uordblks && (size_t)b.arena == a.arena, "mallinfo %d, mallinfo2 %zu", b.uordblks, a.uordblks);
  printf("ok mallinfo2 arena=%zu uordblks=%zu fordblks=%zu keepcost=%zu hblks=%zu ordblks=%zu\n",
         a.arena, a.uordblks, a.fordblks, a.keepcost, a.hblks, a.ordblks);

  free(big);
  struct mallinfo2 c = mallinfo2();
  CHECK(c.uordblks + (1000 << 10) <= a.uordblks, "freeing 1 MiB lowers uordblks: %zu -> %zu", a.uordblks, c.uordblks);
  printf("ok after free uordblks=%zu\n", c.uordblks);

  char *text = 0;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  CHECK(f && malloc_info(0, f) == 0, "malloc_info(0, f) succeeds");
  if (f) fclose(f);
  CHECK(text && strstr(text, "<malloc version=\"1\" allocator=\"goalloc\">") && strstr(text, "</malloc>"), "malloc_info XML: %s", text ? text : "(null)");
  char want[64];
  snprintf(want, sizeof want, "<system type=\"current\" size=\"%zu\"/>", c.arena);
  CHECK(text && strstr(text, want), "malloc_info has %s", want);
  free(text);
  CHECK(malloc_info(1, stdout) != 0, "malloc_info with options != 0 fails");
  printf("ok malloc_info\n");
  fflush(stdout);
  malloc_stats();
  for (int i = 1; i < 300; i += 2) free(blocks[i]);
  return failures ? 1 : 0;
}
