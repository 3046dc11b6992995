// limits_huge.c: huge and overflowing sizes and alignments. Every such request must fail cleanly
// (NULL with errno ENOMEM, or EINVAL for a bad alignment; posix_memalign returns the code and
// leaves *memptr alone) or, for sizes the machine can map, return a usable block; existing blocks
// must stay intact and the program must go on allocating normally afterwards. It also bounds
// the resident metadata a huge block leaves behind. Exit status 0 when every check holds.
#include "rel_common.h"
#include <sys/wait.h>

static int checks;

#define MiB ((size_t)1 << 20)

static void ok(const char *what) { checks++; rel_say("  ok    %s\n", what); }

// A request the machine may or may not satisfy (a huge but representable size): NULL + ENOMEM,
// or a block whose first and last bytes are writable.
static void may_fail(size_t n, const char *what) {
  checks++;
  errno = 0;
  unsigned char *p = rel_malloc(n);
  if (!p) {
    if (errno != ENOMEM) { rel_fail("%s: NULL with errno %d", what, errno); return; }
    rel_say("  ok    %s -> NULL, ENOMEM\n", what);
    return;
  }
  size_t u = rel_usable(p);
  if (u < n) rel_fail("%s: usable size %zu < %zu", what, u, n);
  p[0] = 1;
  p[n - 1] = 2;
  if (p[0] != 1 || p[n - 1] != 2) rel_fail("%s: block not writable", what);
  rel_free(p);
  rel_say("  ok    %s -> a usable block (freed)\n", what);
}

// Every huge request runs in a child process (fork): a crash is then a reported failure, not the
// end of the test, and a block the child gets back stays the child's. The child also checks that
// the block it passed to a failing realloc is intact.
enum { C_MALLOC, C_CALLOC, C_REALLOC, C_REALLOC_NULL, C_VALLOC, C_PVALLOC, C_ALIGNED_ALLOC, C_MEMALIGN,
       C_POSIX_MEMALIGN, C_REALLOCARRAY, C_REALLOCARRAY_NULL };
struct res { int sig; int rc; void *p; int err; size_t usable; int intact; };
static unsigned char *keep;

static int keep_intact(void) {
  for (int i = 0; i < 1000; i++) if (keep[i] != 0x3C) return 0;
  return rel_usable(keep) >= 1000;
}

static struct res guarded(int call, size_t a, size_t b) {
  struct res r = {0, 0, NULL, 0, 0, 1};
  int fds[2];
  if (pipe(fds) != 0) { r.sig = -1; return r; }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    errno = 0;
    void *out = (void *)0x1;
    switch (call) {
    case C_MALLOC: r.p = rel_malloc(a); break;
    case C_CALLOC: r.p = rel_calloc(a, b); break;
    case C_REALLOC: r.p = rel_realloc(keep, a); break;
    case C_REALLOC_NULL: r.p = rel_realloc(NULL, a); break;
    case C_VALLOC: r.p = rel_valloc(a); break;
    case C_PVALLOC: r.p = rel_pvalloc(a); break;
    case C_ALIGNED_ALLOC: r.p = rel_aligned_alloc(a, b); break;
    case C_MEMALIGN: r.p = rel_memalign(a, b); break;
    case C_POSIX_MEMALIGN:
      r.rc = rel_posix_memalign(&out, a, b);
      r.p = r.rc == 0 ? out : NULL;
      if (r.rc != 0 && out != (void *)0x1) r.rc = -1000;  // *memptr written on failure
      break;
    case C_REALLOCARRAY: r.p = rel_reallocarray(keep, a, b); break;
    default: r.p = rel_reallocarray(NULL, a, b); break;
    }
    r.err = call == C_POSIX_MEMALIGN ? r.rc : errno;
    r.usable = r.p ? rel_usable(r.p) : 0;
    r.intact = keep_intact();
    ssize_t w = write(fds[1], &r, sizeof r);
    _exit(w == (ssize_t)sizeof r ? 0 : 1);
  }
  close(fds[1]);
  ssize_t n = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) { memset(&r, 0, sizeof r); r.sig = WTERMSIG(st); r.intact = 1; }
  else if (n != (ssize_t)sizeof r) r.sig = -1;
  return r;
}

// A request that must fail (NULL + ENOMEM, or EINVAL when einval_ok), checked from a child's result.
static void must_fail_r(struct res r, const char *what, int einval_ok) {
  checks++;
  if (r.sig) { rel_fail("%s: the process died (signal %d)", what, r.sig); return; }
  if (!r.intact) { rel_fail("%s: the block passed in changed", what); return; }
  if (r.rc == -1000) { rel_fail("%s: *memptr written on failure", what); return; }
  if (r.p) { rel_fail("%s returned %p (usable %zu)", what, r.p, r.usable); return; }
  if (r.err != ENOMEM && !(einval_ok && r.err == EINVAL)) { rel_fail("%s: errno %d, expected ENOMEM", what, r.err); return; }
  rel_say("  ok    %s -> NULL, %s\n", what, r.err == ENOMEM ? "ENOMEM" : "EINVAL");
}

int main(void) {
  rel_say("limits_huge: goalloc %s\n", rel_goalloc_loaded() ? "loaded" : "NOT loaded");
  keep = rel_malloc(1000);
  memset(keep, 0x3C, 1000);
  char what[128];

  static const size_t huge_sizes[] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX - 8191, SIZE_MAX - 65535, SIZE_MAX / 2 + 1,
    SIZE_MAX / 2, SIZE_MAX / 4, (size_t)1 << 56, (size_t)1 << 48, (size_t)1 << 47};
  for (size_t i = 0; i < sizeof huge_sizes / sizeof huge_sizes[0]; i++) {
    size_t n = huge_sizes[i];
    snprintf(what, sizeof what, "malloc(%#zx)", n);
    must_fail_r(guarded(C_MALLOC, n, 0), what, 0);
    snprintf(what, sizeof what, "calloc(1, %#zx)", n);
    must_fail_r(guarded(C_CALLOC, 1, n), what, 0);
    snprintf(what, sizeof what, "realloc(block, %#zx)", n);
    must_fail_r(guarded(C_REALLOC, n, 0), what, 0);
    snprintf(what, sizeof what, "realloc(NULL, %#zx)", n);
    must_fail_r(guarded(C_REALLOC_NULL, n, 0), what, 0);
    snprintf(what, sizeof what, "valloc(%#zx)", n);
    must_fail_r(guarded(C_VALLOC, n, 0), what, 0);
    snprintf(what, sizeof what, "pvalloc(%#zx)", n);  // for n > SIZE_MAX - 4095 the page round-up overflows
    must_fail_r(guarded(C_PVALLOC, n, 0), what, 0);
    snprintf(what, sizeof what, "aligned_alloc(4096, %#zx)", n);
    must_fail_r(guarded(C_ALIGNED_ALLOC, 4096, n), what, 0);
    snprintf(what, sizeof what, "memalign(1 MiB, %#zx)", n);
    must_fail_r(guarded(C_MEMALIGN, MiB, n), what, 0);
    static const size_t pm_aligns[] = {8, 16, 64, 4096, (size_t)1 << 20, (size_t)1 << 30};
    for (size_t ai = 0; ai < sizeof pm_aligns / sizeof pm_aligns[0]; ai++) {
      snprintf(what, sizeof what, "posix_memalign(%zu, %#zx)", pm_aligns[ai], n);
      must_fail_r(guarded(C_POSIX_MEMALIGN, pm_aligns[ai], n), what, 0);
    }
  }

  // Overflowing products.
  static const size_t pairs[][2] = {
    {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {(size_t)1 << 32, (size_t)1 << 32},
    {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 33, ((size_t)1 << 31) + 1}, {SIZE_MAX / 3 + 1, 3},
    {SIZE_MAX / 4, 2}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    size_t n = pairs[i][0], m = pairs[i][1];
    snprintf(what, sizeof what, "calloc(%#zx, %#zx)", n, m);
    must_fail_r(guarded(C_CALLOC, n, m), what, 0);
    snprintf(what, sizeof what, "reallocarray(block, %#zx, %#zx)", n, m);
    must_fail_r(guarded(C_REALLOCARRAY, n, m), what, 0);
    snprintf(what, sizeof what, "reallocarray(NULL, %#zx, %#zx)", n, m);
    must_fail_r(guarded(C_REALLOCARRAY_NULL, n, m), what, 0);
  }

  // Impossible alignments.
  static const size_t aligns[] = {(size_t)1 << 62, (size_t)1 << 63};
  for (size_t i = 0; i < 2; i++) {
    size_t a = aligns[i];
    snprintf(what, sizeof what, "posix_memalign(%#zx, 64)", a);
    must_fail_r(guarded(C_POSIX_MEMALIGN, a, 64), what, 1);
    snprintf(what, sizeof what, "aligned_alloc(%#zx, 64)", a);
    must_fail_r(guarded(C_ALIGNED_ALLOC, a, 64), what, 1);
  }
  must_fail_r(guarded(C_MEMALIGN, (size_t)1 << 62, 64), "memalign(1<<62, 64)", 1);
  must_fail_r(guarded(C_MEMALIGN, (size_t)1 << 63, 100), "memalign(1<<63, 100)", 1);
  must_fail_r(guarded(C_MEMALIGN, SIZE_MAX, 100), "memalign(SIZE_MAX, 100)", 1);
  // Bad (non power of two) alignments.
  static const size_t bad_aligns[] = {0, 3, 12, 24, 100, 4097};
  for (size_t i = 0; i < sizeof bad_aligns / sizeof bad_aligns[0]; i++) {
    void *out = (void *)0x1;
    int rc = rel_posix_memalign(&out, bad_aligns[i], 64);
    snprintf(what, sizeof what, "posix_memalign(%zu, 64)", bad_aligns[i]);
    checks++;
    if (rc != EINVAL || out != (void *)0x1) rel_fail("%s = %d (expected EINVAL), *memptr %p", what, rc, out);
    else rel_say("  ok    %s -> EINVAL\n", what);
  }

  // Huge but representable sizes: fail cleanly, or map (NORESERVE) and work. (Not larger: see the
  // metadata check below - GoAlloc touches about 1/1000 of a block's size in metadata.)
  static const size_t big[] = {(size_t)1 << 33, (size_t)1 << 35, ((size_t)1 << 36) + 1};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    snprintf(what, sizeof what, "malloc(%#zx)", big[i]);
    may_fail(big[i], what);
    if (!rel_check_heap()) rel_fail("goalloc_check_heap() after %s", what);
  }

  {
    // 16-byte alignment for sizes under 16 (once served from the 8-byte class).
    void *ps[48];
    int k = 0, bad = 0;
    for (size_t n = 0; n < 16; n++) {
      void *p = NULL;
      rel_posix_memalign(&p, 16, n);
      if (!p || (rel_addr(p) & 15)) { bad++; rel_fail("posix_memalign(16, %zu) = %p", n, p); }
      ps[k++] = p;
      p = rel_aligned_alloc(16, n);
      if (!p || (rel_addr(p) & 15)) { bad++; rel_fail("aligned_alloc(16, %zu) = %p", n, p); }
      ps[k++] = p;
      p = rel_memalign(16, n);
      if (!p || (rel_addr(p) & 15)) { bad++; rel_fail("memalign(16, %zu) = %p", n, p); }
      ps[k++] = p;
    }
    for (int i = 0; i < k; i++) rel_free(ps[i]);
    checks++;
    if (!bad) ok("posix_memalign/aligned_alloc/memalign(16, 0..15) are 16-byte aligned");
  }

  // Metadata cost of a huge block, measured in a child: malloc(256 GiB) and free must leave at
  // most 64 MiB of resident memory behind (GoAlloc once wrote its per-page span table for every
  // page of such a block and kept it: about 1/1000 of the size).
  {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      long before = rel_status_kib("VmRSS");
      void *p = rel_malloc((size_t)1 << 38);
      rel_free(p);
      long grew = rel_status_kib("VmRSS") - before;
      rel_say("        malloc(256 GiB) + free: VmRSS grew by %ld KiB (%s)\n", grew, p ? "allocated" : "NULL");
      _exit(grew > 64 * 1024 ? 3 : 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    checks++;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) rel_fail("malloc(256 GiB) + free left more than 64 MiB of RSS");
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rel_fail("malloc(256 GiB) in a child: status %#x", st);
    else ok("malloc(256 GiB) + free leaves at most 64 MiB of RSS");
  }

  // The program goes on: ordinary allocation still works and the heap is consistent.
  void *a = rel_malloc(100), *b = rel_malloc(MiB), *c = rel_calloc(1000, 10);
  checks++;
  if (!a || !b || !c) rel_fail("ordinary allocation after the huge requests failed");
  else ok("ordinary allocation afterwards");
  rel_free(a); rel_free(b); rel_free(c); rel_free(keep);
  checks++;
  if (!rel_check_heap()) rel_fail("goalloc_check_heap() returned 0 at the end");
  else ok("goalloc_check_heap() at the end");
  rel_say("limits_huge: %d checks, %d failed: %s\n", checks, rel_failures, rel_failures ? "FAILED" : "OK");
  return rel_failures ? 1 : 0;
}
