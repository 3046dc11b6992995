// Dirty-page tracking for the GC mode's concurrent mark (goalloc_dirty.h). The uffd constants
// are spelled out: the build machine's headers may predate Linux 6.7 (the kernel is asked, not
// the headers; an old kernel refuses the feature and the next mechanism is tried).
#define _GNU_SOURCE
#include "goalloc_dirty.h"
#include "goalloc_env.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

// <linux/userfaultfd.h>
#define UFFD_API_ 0xAAull
#define UFFD_USER_MODE_ONLY_ 1
#define UFFD_FEATURE_WP_UNPOPULATED_ (1ull << 13)
#define UFFD_FEATURE_WP_ASYNC_ (1ull << 15)
#define UFFDIO_REGISTER_MODE_WP_ (1ull << 1)
struct uffd_range_ { uint64_t start, len; };
struct uffdio_api_ { uint64_t api, features, ioctls; };
struct uffdio_register_ { struct uffd_range_ range; uint64_t mode, ioctls; };
#define UFFDIO_API_ _IOWR(0xAA, 0x3F, struct uffdio_api_)
#define UFFDIO_REGISTER_ _IOWR(0xAA, 0x00, struct uffdio_register_)
// <linux/fs.h>: PAGEMAP_SCAN
struct page_region_ { uint64_t start, end, categories; };
struct pm_scan_arg_ {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN_ _IOWR('f', 16, struct pm_scan_arg_)
#define PM_SCAN_WP_MATCHING_ 1ull
#define PM_SCAN_CHECK_WPASYNC_ 2ull
#define PAGE_IS_WRITTEN_ 2ull

enum { OS_PAGE = 4096, VEC = 1024 };
static int mode = -1;        // -1: not chosen yet
static int uffd = -1;        // uffd mode: the userfaultfd
static int pagemap = -1;     // /proc/self/pagemap (uffd and softdirty)
static struct page_region_ vec[VEC];
static uint64_t entries[VEC * 4];  // softdirty: pagemap entries

static long pm_scan(uintptr_t lo, uintptr_t hi, uint64_t flags, uintptr_t *walk_end) {
  struct pm_scan_arg_ a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.flags = flags;
  a.start = lo;
  a.end = hi;
  a.vec = (uint64_t)(uintptr_t)vec;
  a.vec_len = VEC;
  a.category_mask = PAGE_IS_WRITTEN_;
  a.return_mask = PAGE_IS_WRITTEN_;
  long r = ioctl(pagemap, PAGEMAP_SCAN_, &a);
  *walk_end = (uintptr_t)a.walk_end;
  return r;
}

static int uffd_register(uintptr_t lo, uintptr_t hi) {
  struct uffdio_register_ reg = {{lo, hi - lo}, UFFDIO_REGISTER_MODE_WP_, 0};
  return ioctl(uffd, UFFDIO_REGISTER_, &reg);
}

/// userfaultfd with asynchronous write-protect, proved on a scratch mapping.
static int probe_uffd(void) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY_);
  if (fd < 0) fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return 0;
  struct uffdio_api_ api = {UFFD_API_, UFFD_FEATURE_WP_ASYNC_ | UFFD_FEATURE_WP_UNPOPULATED_, 0};
  if (ioctl(fd, UFFDIO_API_, &api) != 0) { close(fd); return 0; }
  uffd = fd;
  char *p = mmap(0, 4 * OS_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { close(fd); uffd = -1; return 0; }
  memset(p, 1, 4 * OS_PAGE);
  uintptr_t lo = (uintptr_t)p, hi = lo + 4 * OS_PAGE, end;
  int ok = uffd_register(lo, hi) == 0
    && pm_scan(lo, hi, PM_SCAN_WP_MATCHING_ | PM_SCAN_CHECK_WPASYNC_, &end) >= 0
    && pm_scan(lo, hi, 0, &end) == 0;               // nothing written since
  if (ok) {
    ((volatile char *)p)[2 * OS_PAGE] = 2;
    ok = pm_scan(lo, hi, 0, &end) == 1 && vec[0].start == lo + 2 * OS_PAGE && vec[0].end == lo + 3 * OS_PAGE;
  }
  munmap(p, 4 * OS_PAGE);
  if (!ok) { close(fd); uffd = -1; }
  return ok;
}

static int clear_refs(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long r = write(fd, "4", 1);
  close(fd);
  return r == 1 ? 0 : -1;
}

static int soft_dirty(uintptr_t a) {
  uint64_t e = 0;
  if (pread(pagemap, &e, 8, (off_t)(a / OS_PAGE * 8)) != 8) return -1;
  return (int)((e >> 55) & 1);
}

/// Soft-dirty bits: a page written after clear_refs reads dirty, one not written reads clean.
static int probe_softdirty(void) {
  char *p = mmap(0, 2 * OS_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  memset(p, 1, 2 * OS_PAGE);
  int ok = clear_refs() == 0 && soft_dirty((uintptr_t)p) == 0;
  if (ok) {
    ((volatile char *)p)[0] = 2;
    ok = soft_dirty((uintptr_t)p) == 1 && soft_dirty((uintptr_t)p + OS_PAGE) == 0;
  }
  munmap(p, 2 * OS_PAGE);
  return ok;
}

int goalloc_dirty_mode(void) {
  if (mode >= 0) return mode;
  int want = goalloc_debug_gcdirty();  // 0 auto, 1 uffd, 2 softdirty, 3 full, 4 barrier
  int m = GOALLOC_DIRTY_FULL;
  if (want == 4) {
    m = GOALLOC_DIRTY_BARRIER;  // (never chosen by auto: it is the program's promise)
  } else if (want != 3) {
    pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap >= 0) {
      if ((want == 0 || want == 1) && probe_uffd()) m = GOALLOC_DIRTY_UFFD;
      else if ((want == 0 || want == 2) && probe_softdirty()) m = GOALLOC_DIRTY_SOFTDIRTY;
    }
    if (m == GOALLOC_DIRTY_FULL && pagemap >= 0) { close(pagemap); pagemap = -1; }
  }
  mode = m;
  return m;
}

int goalloc_dirty_begin(void) {
  switch (goalloc_dirty_mode()) {
    case GOALLOC_DIRTY_SOFTDIRTY: return clear_refs();
    case GOALLOC_DIRTY_UFFD: return 0;
    default: return -1;
  }
}

int goalloc_dirty_protect(uintptr_t lo, uintptr_t hi) {
  switch (goalloc_dirty_mode()) {
    case GOALLOC_DIRTY_SOFTDIRTY: return 0;  // (begin cleared everything)
    case GOALLOC_DIRTY_UFFD: {
      // Registering a range registered before is allowed; a new one (the heap grew) needs it.
      if (uffd_register(lo, hi) != 0) return -1;
      uintptr_t at = lo;
      while (at < hi) {
        uintptr_t end = hi;
        if (pm_scan(at, hi, PM_SCAN_WP_MATCHING_ | PM_SCAN_CHECK_WPASYNC_, &end) < 0) return -1;
        if (end <= at) return -1;
        at = end;
      }
      return 0;
    }
    default: return -1;
  }
}

long goalloc_dirty_scan(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max) {
  uintptr_t at = *lo;
  if (at >= hi) return 0;
  switch (goalloc_dirty_mode()) {
    case GOALLOC_DIRTY_UFFD: {
      uintptr_t end = hi;
      long n = pm_scan(at, hi, 0, &end);
      if (n < 0 || end <= at) break;
      if (n > max) { n = max; end = (uintptr_t)vec[n - 1].end; }  // (max is at least VEC in practice)
      for (long i = 0; i < n; i++) { out[2 * i] = (uintptr_t)vec[i].start; out[2 * i + 1] = (uintptr_t)vec[i].end; }
      *lo = end;
      return n;
    }
    case GOALLOC_DIRTY_SOFTDIRTY: {
      long npages = (long)((hi - at) / OS_PAGE);
      long cap = (long)(sizeof entries / 8);
      if (npages > cap) npages = cap;
      ssize_t r = pread(pagemap, entries, (size_t)npages * 8, (off_t)(at / OS_PAGE * 8));
      if (r <= 0) break;
      npages = r / 8;
      long n = 0;
      for (long i = 0; i < npages; i++) {
        if (!((entries[i] >> 55) & 1)) continue;
        uintptr_t a = at + (uintptr_t)i * OS_PAGE;
        if (n > 0 && out[2 * n - 1] == a) { out[2 * n - 1] = a + OS_PAGE; continue; }
        if (n == max) { *lo = a; return n; }
        out[2 * n] = a;
        out[2 * n + 1] = a + OS_PAGE;
        n++;
      }
      *lo = at + (uintptr_t)npages * OS_PAGE;
      return n;
    }
    default: break;
  }
  return -1;
}

long goalloc_dirty_scan_reset(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max) {
  uintptr_t at = *lo;
  if (at >= hi) return 0;
  if (goalloc_dirty_mode() != GOALLOC_DIRTY_UFFD || max < VEC) return -1;
  uintptr_t end = hi;
  long n = pm_scan(at, hi, PM_SCAN_WP_MATCHING_ | PM_SCAN_CHECK_WPASYNC_, &end);
  if (n < 0 || end <= at) return -1;
  for (long i = 0; i < n; i++) { out[2 * i] = (uintptr_t)vec[i].start; out[2 * i + 1] = (uintptr_t)vec[i].end; }
  *lo = end;
  return n;
}

const char *goalloc_dirty_name(int m) {
  return m == GOALLOC_DIRTY_UFFD ? "uffd" : m == GOALLOC_DIRTY_SOFTDIRTY ? "softdirty"
       : m == GOALLOC_DIRTY_BARRIER ? "barrier" : "full";
}

void goalloc_dirty_after_fork_child(void) {
  if (uffd >= 0) close(uffd);
  if (pagemap >= 0) close(pagemap);
  uffd = -1;
  pagemap = -1;
  mode = -1;
}
