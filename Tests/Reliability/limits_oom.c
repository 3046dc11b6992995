// limits_oom.c: out of address space. After startup the program sets RLIMIT_AS to its current
// VmSize + HEADROOM_MIB (default 256), then allocates (large, then medium, then small blocks, each
// filled with its own byte) until malloc returns NULL. Every failure must be NULL with errno ENOMEM
// (never a crash); calloc, realloc, posix_memalign and aligned_alloc must fail the same way and
// leave existing blocks intact. Then everything is checked and freed, and allocation must work
// again (the same amount fits once more). goalloc_check_heap() must hold throughout.
// Exit status 0 when every check holds. Usage: limits_oom [HEADROOM_MIB]
#include "rel_common.h"
#include <sys/mman.h>
#include <sys/resource.h>

#define MAX_BLOCKS (1 << 21)

struct blk { unsigned char *p; size_t n; };
static struct blk *blocks;  // mmap'ed: outside the heap under test
static size_t nblocks;

static size_t first_bad(const unsigned char *p, unsigned char v, size_t n) {
  for (size_t i = 0; i < n; i++) if (p[i] != v) return i;
  return SIZE_MAX;
}

static unsigned char tag(size_t i) { return (unsigned char)(i * 131 + 7); }

// Allocates blocks of `size` bytes until NULL. Returns the number allocated.
static size_t fill_until_null(size_t size, const char *what) {
  size_t got = 0;
  for (;;) {
    if (nblocks == MAX_BLOCKS) { rel_fail("%s: block table full", what); return got; }
    errno = 0;
    unsigned char *p = rel_malloc(size);
    if (!p) {
      if (errno != ENOMEM) rel_fail("%s: malloc(%zu) = NULL with errno %d, expected ENOMEM", what, size, errno);
      break;
    }
    memset(p, tag(nblocks), size);
    blocks[nblocks].p = p;
    blocks[nblocks].n = size;
    nblocks++;
    got++;
  }
  rel_say("  %-7s blocks of %7zu B: %8zu allocated before NULL/ENOMEM\n", what, size, got);
  return got;
}

static void check_all(const char *when) {
  size_t bad = 0;
  for (size_t i = 0; i < nblocks; i++) {
    size_t at = first_bad(blocks[i].p, tag(i), blocks[i].n);
    if (at != SIZE_MAX && bad++ < 5)
      rel_fail("%s: block %zu (%p, %zu B) corrupted at offset %zu", when, i, (void *)blocks[i].p, blocks[i].n, at);
  }
  if (!rel_check_heap()) rel_fail("%s: goalloc_check_heap() returned 0", when);
}

static void expect_enomem(void *p, const char *what) {
  if (p) { rel_fail("%s succeeded at the limit (%p)", what, p); rel_free(p); return; }
  if (errno != ENOMEM) rel_fail("%s: errno %d, expected ENOMEM", what, errno);
}

static void free_all(void) {
  for (size_t i = 0; i < nblocks; i++) rel_free(blocks[i].p);
  nblocks = 0;
}

int main(int argc, char **argv) {
  long headroom_mib = argc > 1 ? atol(argv[1]) : 256;
  blocks = mmap(NULL, sizeof(struct blk) * MAX_BLOCKS, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (blocks == MAP_FAILED) { perror("mmap"); return 2; }
  free(malloc(1));  // the allocator is initialised before the limit is computed
  long vm = rel_status_kib("VmSize");
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)(vm + headroom_mib * 1024) * 1024;
  if (setrlimit(RLIMIT_AS, &rl) != 0) { perror("setrlimit"); return 2; }
  rel_say("limits_oom: goalloc %s, VmSize %ld KiB, RLIMIT_AS = VmSize + %ld MiB\n",
          rel_goalloc_loaded() ? "loaded" : "NOT loaded", vm, headroom_mib);

  // Round 1: large, medium, small blocks until NULL.
  size_t large1 = fill_until_null(1 << 20, "large");
  fill_until_null(16 << 10, "medium");
  fill_until_null(256, "small");
  long vm_full = rel_status_kib("VmSize");
  rel_say("  at the limit: %zu blocks, VmSize %ld KiB (limit %ld KiB)\n", nblocks, vm_full,
          vm + headroom_mib * 1024);
  if (large1 == 0 && headroom_mib >= 128) rel_fail("no 1 MiB block fitted under the limit");
  check_all("at the limit");

  // Every other entry point fails cleanly at the limit; existing blocks stay intact.
  errno = 0; expect_enomem(rel_malloc(8 << 20), "malloc(8 MiB)");
  errno = 0; expect_enomem(rel_calloc(1, 4 << 20), "calloc(1, 4 MiB)");
  errno = 0; expect_enomem(rel_calloc(2048, 2048), "calloc(2048, 2048)");
  errno = 0; expect_enomem(rel_realloc(blocks[0].p, 64 << 20), "realloc(block, 64 MiB)");
  errno = 0; expect_enomem(rel_aligned_alloc(4096, 4 << 20), "aligned_alloc(4096, 4 MiB)");
  errno = 0; expect_enomem(rel_memalign(1 << 20, 4 << 20), "memalign(1 MiB, 4 MiB)");
  errno = 0; expect_enomem(rel_valloc(4 << 20), "valloc(4 MiB)");
  {
    void *out = (void *)0x1;
    int rc = rel_posix_memalign(&out, 64, 4 << 20);
    if (rc != ENOMEM || out != (void *)0x1) rel_fail("posix_memalign at the limit: rc %d, out %p", rc, out);
  }
  check_all("after failed calls");

  // Free every other block: the freed space is reusable at once, still under the limit.
  size_t kept = 0;
  for (size_t i = 0; i < nblocks; i++) {
    if (i % 2) { rel_free(blocks[i].p); continue; }
    blocks[kept] = blocks[i];
    memset(blocks[kept].p, tag(kept), blocks[kept].n);
    kept++;
  }
  nblocks = kept;
  size_t again = 0;
  for (int i = 0; i < 1000; i++) {
    unsigned char *p = rel_malloc(256);
    if (!p) break;
    memset(p, tag(nblocks), 256);
    blocks[nblocks].p = p; blocks[nblocks].n = 256; nblocks++; again++;
  }
  if (again < 1000) rel_fail("after freeing half, only %zu of 1000 small mallocs succeeded", again);
  check_all("after freeing half");

  // Free everything; the same amount of large blocks fits again (no address space was lost).
  free_all();
  if (!rel_check_heap()) rel_fail("after freeing everything: goalloc_check_heap() returned 0");
  size_t large2 = fill_until_null(1 << 20, "large");
  rel_say("  round 2: %zu large blocks (round 1: %zu)\n", large2, large1);
  if (large2 + large2 / 10 + 2 < large1) rel_fail("round 2 fitted %zu large blocks, round 1 %zu", large2, large1);
  check_all("round 2");
  free_all();
  void *p = rel_malloc(100), *q = rel_malloc(1 << 20);
  if (!p || !q) rel_fail("allocation after recovery failed");
  rel_free(p);
  rel_free(q);
  if (!rel_check_heap()) rel_fail("at the end: goalloc_check_heap() returned 0");
  rel_say("limits_oom: %s\n", rel_failures ? "FAILED" : "OK");
  return rel_failures ? 1 : 0;
}
