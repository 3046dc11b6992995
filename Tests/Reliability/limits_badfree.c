// limits_badfree.c: invalid frees. `limits_badfree MODE` makes one bad call, after printing
// "addr 0x..." (the pointer it hands to the call) on stdout; with the default GOALLOC_DEBUG the
// allocator must print one line naming that address and abort; with GOALLOC_DEBUG=badfree=warn it
// must print, ignore the call and go on: live blocks intact, the heap consistent, later
// allocations fine (exit 0). `limits_badfree all` makes every kind of bad call in one process.
// Tests/PreloadTests/BadFreeTests.swift runs it and checks all of that.
// MODE: double-small, double-large, interior-small, interior-large, interior-tail, wild-stack,
//       wild-global, wild-window, wild-mmap, realloc-interior, usable-interior-small,
//       double-remote, double-large-first, realloc-interior-large, usable-interior-large,
//       realloc-freed, realloc-freed-large, usable-freed-large, all (these eighteen)
#define _GNU_SOURCE
#include "rel_common.h"
#include <pthread.h>
#include <sys/mman.h>

static int global_object[4];
static unsigned char *live[64];

static void fill_live(void) {
  for (int i = 0; i < 64; i++) {
    size_t n = (size_t)(i * 613 % 5000) + 1 + (i == 63 ? 100000 : 0);
    live[i] = rel_malloc(n);
    memset(live[i], i, n);
  }
}

static int check_live(void) {
  for (int i = 0; i < 64; i++) {
    size_t n = (size_t)(i * 613 % 5000) + 1 + (i == 63 ? 100000 : 0);
    for (size_t j = 0; j < n; j++) if (live[i][j] != (unsigned char)i) return 0;
  }
  return 1;
}

static void *free_it(void *p) { rel_free(p); return NULL; }

// The pointer the bad call gets, on stdout before the call (unbuffered: the call may abort).
static void *announce(void *p) { rel_say("addr %p\n", p); return p; }

static int bad_call(const char *mode) {
  int local = 0;
  void *volatile p;
  if (!strcmp(mode, "double-small")) { p = rel_malloc(48); rel_free(p); rel_free(announce(p)); }
  else if (!strcmp(mode, "double-large")) {
    // After a warm-up large free (double-large-first covers the process's very first one; GoAlloc
    // once started its scavenger thread there, whose allocations took the pages just freed).
    rel_free(rel_malloc(200000));
    p = rel_malloc(200000); rel_free(p); rel_free(announce(p));
  }
  else if (!strcmp(mode, "double-large-first")) { p = rel_malloc(200000); rel_free(p); rel_free(announce(p)); }
  else if (!strcmp(mode, "interior-small")) { p = rel_malloc(100); rel_free(announce((char *)p + 16)); rel_free(p); }
  else if (!strcmp(mode, "interior-large")) { p = rel_malloc(100000); rel_free(announce((char *)p + 8192)); rel_free(p); }
  else if (!strcmp(mode, "wild-stack")) { p = &local; rel_free(announce(p)); }
  else if (!strcmp(mode, "wild-global")) { p = global_object; rel_free(announce(p)); }
  else if (!strcmp(mode, "wild-mmap")) {
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rel_free(announce(p));
    munmap(p, 4096);
  }
  else if (!strcmp(mode, "interior-tail")) {
    // 48 B slots: a one-page span holds 170 of them and 32 bytes of tail. The address right
    // after the last slot is inside the span but no slot's start.
    p = rel_malloc(48);
    rel_free(announce((char *)((uintptr_t)p & ~(uintptr_t)8191) + 170 * 48));
    rel_free(p);
  }
  else if (!strcmp(mode, "wild-window")) {
    // A mapping of someone else's inside GoAlloc's heap window (the 64 GiB above the heap's
    // random base; this is 32 GiB above the heap's first arena): the page -> span table has no
    // entry for it.
    void *probe = rel_malloc(64);
    uintptr_t at = ((uintptr_t)probe & ~(((uintptr_t)64 << 20) - 1)) + ((uintptr_t)32 << 30);
    rel_free(probe);
    p = mmap((void *)at, 8192, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) { rel_say("wild-window: mmap failed\n"); return 1; }
    rel_free(announce(p));
    munmap(p, 8192);
  }
  else if (!strcmp(mode, "realloc-interior")) {
    p = rel_malloc(256);
    void *q = rel_realloc(announce((char *)p + 32), 1000);
    if (q) { rel_say("realloc of an interior pointer returned %p\n", q); return 1; }
    rel_free(p);
  }
  else if (!strcmp(mode, "realloc-interior-large")) {
    p = rel_malloc(100000);
    void *q = rel_realloc(announce((char *)p + 4096), 1000);
    if (q) { rel_say("realloc of an interior pointer returned %p\n", q); return 1; }
    rel_free(p);
  }
  else if (!strcmp(mode, "usable-interior-small")) {
    p = rel_malloc(100);
    if (rel_usable(announce((char *)p + 16)) != 0) { rel_say("malloc_usable_size of an interior pointer is not 0\n"); return 1; }
    rel_free(p);
  }
  else if (!strcmp(mode, "usable-interior-large")) {
    p = rel_malloc(100000);
    if (rel_usable(announce((char *)p + 4096)) != 0) { rel_say("malloc_usable_size of an interior pointer is not 0\n"); return 1; }
    rel_free(p);
  }
  else if (!strcmp(mode, "double-remote")) {  // first free on another thread, second here
    p = rel_malloc(64);
    pthread_t t;
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
    rel_free(announce(p));
  }
  else if (!strcmp(mode, "realloc-freed")) {  // realloc of a pointer already freed
    p = rel_malloc(64);
    memset(p, 4, 64);
    rel_free(p);
    void *q = rel_realloc(announce(p), 128);
    (void)q;  // whatever it is, it must not be used
  }
  else if (!strcmp(mode, "realloc-freed-large")) {  // a freed 100 000 B block (in a thread's LargeBins)
    p = rel_malloc(100000);
    rel_free(p);
    void *q = rel_realloc(announce(p), 120000);
    if (q) { rel_say("realloc of a freed large block returned %p\n", q); return 1; }
  }
  else if (!strcmp(mode, "usable-freed-large")) {
    p = rel_malloc(100000);
    rel_free(p);
    if (rel_usable(announce(p)) != 0) { rel_say("malloc_usable_size of a freed large block is not 0\n"); return 1; }
  }
  else { rel_say("unknown mode %s\n", mode); return 2; }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { rel_say("usage: limits_badfree MODE\n"); return 2; }
  static const char *modes[] = {"double-small", "double-large", "interior-small", "interior-large",
                                "wild-stack", "wild-global", "wild-mmap", "realloc-interior",
                                "usable-interior-small", "double-remote", "interior-tail",
                                "wild-window", "double-large-first", "realloc-interior-large",
                                "usable-interior-large", "realloc-freed", "realloc-freed-large",
                                "usable-freed-large"};
  fill_live();
  int rc = 0;
  if (!strcmp(argv[1], "all")) {
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) rc |= bad_call(modes[i]);
  } else {
    rc = bad_call(argv[1]);
  }
  if (rc) return rc;
  // Only reached when the allocator did not abort (badfree=warn): everything must still work.
  if (!check_live()) { rel_say("live blocks corrupted after the bad call\n"); return 1; }
  void *a[100];
  for (int i = 0; i < 100; i++) { a[i] = rel_malloc((size_t)i * 40 + 1); memset(a[i], 0xEE, (size_t)i * 40 + 1); }
  for (int i = 0; i < 100; i++) rel_free(a[i]);
  if (!check_live()) { rel_say("live blocks corrupted after more allocation\n"); return 1; }
  for (int i = 0; i < 64; i++) rel_free(live[i]);
  if (!rel_check_heap()) { rel_say("goalloc_check_heap() returned 0\n"); return 1; }
  rel_say("limits_badfree %s: continued, heap consistent\n", argv[1]);
  return 0;
}
