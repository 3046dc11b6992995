// Dirty-page tracking for the GC mode's concurrent mark (goalloc_dirty.h). The uffd constants
// are spelled out: the build machine's headers may predate Linux 6.7 (the kernel is asked, not
// the headers; an old kernel refuses the feature and the next mechanism is tried).
#define _GNU_SOURCE
#include "goalloc_dirty.h"
#include "goalloc_env.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/auxv.h>
#include <ucontext.h>
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
static void mp_end(void);
static void mp_fork_child(void);
static int mp_begin(void);
static int mp_register(uintptr_t lo, uintptr_t hi);
static long mp_scan(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max);

/// Adds written page a to the [a, b) runs in out (n so far), merged into the last run when it
/// follows it. 0 when out is full (the scan stops at a).
static int put_page(uintptr_t *out, long *n, long max, uintptr_t a) {
  if (*n > 0 && out[2 * *n - 1] == a) { out[2 * *n - 1] = a + OS_PAGE; return 1; }
  if (*n == max) return 0;
  out[2 * *n] = a;
  out[2 * *n + 1] = a + OS_PAGE;
  (*n)++;
  return 1;
}

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
  int want = goalloc_debug_gcdirty();  // 0 auto, 1 uffd, 2 softdirty, 3 full, 4 barrier, 5 mprotect
  int m = GOALLOC_DIRTY_FULL;
  if (want == 4) {
    m = GOALLOC_DIRTY_BARRIER;  // (never chosen by auto: it is the program's promise)
  } else if (want != 3) {
    if (want <= 2) pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap >= 0) {
      if ((want == 0 || want == 1) && probe_uffd()) m = GOALLOC_DIRTY_UFFD;
      else if ((want == 0 || want == 2) && probe_softdirty()) m = GOALLOC_DIRTY_SOFTDIRTY;
    }
    if (m == GOALLOC_DIRTY_FULL && pagemap >= 0) { close(pagemap); pagemap = -1; }
    if (m == GOALLOC_DIRTY_FULL && (want == 0 || want == 5) && getauxval(AT_PAGESZ) == OS_PAGE)
      m = GOALLOC_DIRTY_MPROTECT;
  }
  mode = m;
  return m;
}

int goalloc_dirty_begin(void) {
  switch (goalloc_dirty_mode()) {
    case GOALLOC_DIRTY_SOFTDIRTY: return clear_refs();
    case GOALLOC_DIRTY_UFFD: return 0;
    case GOALLOC_DIRTY_MPROTECT: return mp_begin();
    default: return -1;
  }
}

int goalloc_dirty_protect(uintptr_t lo, uintptr_t hi) {
  switch (goalloc_dirty_mode()) {
    case GOALLOC_DIRTY_SOFTDIRTY: return 0;  // (begin cleared everything)
    case GOALLOC_DIRTY_MPROTECT: return mp_register(lo, hi);
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
        if (!put_page(out, &n, max, a)) { *lo = a; return n; }
      }
      *lo = at + (uintptr_t)npages * OS_PAGE;
      return n;
    }
    case GOALLOC_DIRTY_MPROTECT: return mp_scan(lo, hi, out, max);
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
       : m == GOALLOC_DIRTY_BARRIER ? "barrier" : m == GOALLOC_DIRTY_MPROTECT ? "mprotect" : "full";
}

void goalloc_dirty_end(void) {
  if (mode == GOALLOC_DIRTY_MPROTECT) mp_end();
}

void goalloc_dirty_after_fork_child(void) {
  if (mode == GOALLOC_DIRTY_MPROTECT) mp_fork_child();
  if (uffd >= 0) close(uffd);
  if (pagemap >= 0) close(pagemap);
  uffd = -1;
  pagemap = -1;
  mode = -1;
}

// --- mprotect: the tracked pages are made read-only; the first write to one faults, and the
// SIGSEGV handler records it and makes it writable again (the store then retries).
// A registered range's *descriptor* (struct mp_range, one mapping: its bounds and three bitmaps
// of its 4 KiB pages) sits in a slot; [0, mp_n) are this period's. Bitmaps: `prot` (made
// read-only by this period: the only pages the handler and mp_end touch), `clean` (reads
// unwritten unless `written`: the tracked pages and those nothing scans,
// goalloc_dirty_mark_pages) and `written`. Every other page reads written.
// A handler can be delayed anywhere (preempted, or waiting for the mmap lock in mprotect) while
// the collector ends the period and begins the next one, zeroing the bits and protecting the
// pages again; its mprotect may then make a page of the new period writable after the new
// period's bits were cleared. So after its mprotect a handler records the write once more in the
// descriptors current then (mp_written): that is after the zeroing, or else the page was
// protected again after the handler's mprotect and the next write faults. A descriptor whose
// range changed is replaced, never rewritten in place (a handler reads a slot once and keeps
// the pointer), and unmapped at a later period's start once no handler runs (mp_inh).
// A write fault inside a registered range on a page this period did not protect is a stale
// fault (its period ended and made the page writable before the handler looked) and the store
// is retried; the same page again in the same period on the same thread is a real fault (a
// guard page), passed on.
// Each protected run, and each page a fault makes writable inside one, may split a kernel mapping
// (vm.max_map_count, 65530 by default, counts them): at most MP_MAX_RUNS runs are protected, and
// after MP_MAX_FAULTS faults a period's fault unprotects its whole run (read written; the kernel
// merges the mappings back).
enum { MP_RANGES = 1024, MP_MAX_RUNS = 4096, MP_MAX_FAULTS = 8192, MP_RETIRED = 64 };
struct mp_range { uintptr_t lo, hi; size_t bytes; uint64_t *prot, *clean, *written; };
static struct mp_range *mp[MP_RANGES];     // slots (handlers read them)
static long mp_n;                  // this period's ranges, in slots [0, mp_n)
static long mp_known;              // slots ever filled: [0, mp_known) (stale faults)
static struct mp_range *mp_retired[MP_RETIRED];  // replaced, to unmap once no handler runs
static long mp_nretired;
static long mp_inh;                // handlers running
static long mp_gen;                // periods begun
static int mp_on;                  // a period runs (heap lock)
static long mp_runs;               // protected runs this period
static long mp_faults;             // faults this period (handlers count them)
static struct sigaction mp_prev;   // the SIGSEGV action ours replaced
static int mp_installed;
static __thread uintptr_t mp_stale_page __attribute__((tls_model("initial-exec")));
static __thread long mp_stale_gen __attribute__((tls_model("initial-exec")));

static int bit_get(const uint64_t *w, size_t i) {
  return (int)((__atomic_load_n(&w[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1);
}

static void bits_set(uint64_t *w, size_t i, size_t j) {
  for (; i < j; i++) __atomic_fetch_or(&w[i / 64], 1ull << (i % 64), __ATOMIC_SEQ_CST);
}

static void bits_clear(uint64_t *w, size_t i, size_t j) {
  for (; i < j; i++) __atomic_fetch_and(&w[i / 64], ~(1ull << (i % 64)), __ATOMIC_SEQ_CST);
}

/// The descriptor of slots [0, n) holding a.
static struct mp_range *mp_find_in(uintptr_t a, long n) {
  for (long k = 0; k < n; k++) {
    struct mp_range *r = __atomic_load_n(&mp[k], __ATOMIC_ACQUIRE);
    if (r && a >= r->lo && a < r->hi) return r;
  }
  return 0;
}

static struct mp_range *mp_find(uintptr_t a) { return mp_find_in(a, __atomic_load_n(&mp_n, __ATOMIC_ACQUIRE)); }

/// The first address above a that this period registered (none: UINTPTR_MAX).
static uintptr_t mp_next(uintptr_t a) {
  uintptr_t b = UINTPTR_MAX;
  long n = __atomic_load_n(&mp_n, __ATOMIC_ACQUIRE);
  for (long k = 0; k < n; k++) {
    struct mp_range *r = __atomic_load_n(&mp[k], __ATOMIC_ACQUIRE);
    if (r && r->lo > a && r->lo < b) b = r->lo;
  }
  return b;
}

/// Pages [i, j) of r that this period made read-only, writable again (a run at a time: the
/// kernel merges the mappings back).
static void mp_unprotect(struct mp_range *r, size_t i, size_t j) {
  for (size_t s = i; s < j;) {
    if (s % 64 == 0 && s + 64 <= j && __atomic_load_n(&r->prot[s / 64], __ATOMIC_RELAXED) == 0) { s += 64; continue; }
    if (!bit_get(r->prot, s)) { s++; continue; }
    size_t e = s + 1;
    while (e < j && bit_get(r->prot, e)) e++;
    mprotect((void *)(r->lo + s * OS_PAGE), (e - s) * OS_PAGE, PROT_READ | PROT_WRITE);
    s = e;
  }
}

/// [lo, hi) reads written in this period's descriptors; with `unprotect`, its read-only pages
/// become writable.
static void mp_written(uintptr_t lo, uintptr_t hi, int unprotect) {
  for (uintptr_t a = lo; a < hi;) {
    struct mp_range *r = mp_find(a);
    if (!r) { a = mp_next(a); continue; }
    uintptr_t b = hi < r->hi ? hi : r->hi;
    size_t i = (a - r->lo) / OS_PAGE, j = (b - r->lo) / OS_PAGE;
    bits_set(r->written, i, j);
    if (unprotect) mp_unprotect(r, i, j);
    a = b;
  }
}

/// A write fault at a: 1 if it was ours (recorded and made writable, or a stale fault to retry).
static int mp_fault(uintptr_t a) {
  struct mp_range *r = mp_find(a);
  size_t i = r ? (a - r->lo) / OS_PAGE : 0;
  if (!r || !bit_get(r->prot, i)) {
    if (!r && !mp_find_in(a, __atomic_load_n(&mp_known, __ATOMIC_ACQUIRE))) return 0;  // not ours
    uintptr_t page = a & ~(uintptr_t)(OS_PAGE - 1);
    long gen = __atomic_load_n(&mp_gen, __ATOMIC_ACQUIRE);
    if (mp_stale_page == page && mp_stale_gen == gen) return 0;  // again: a real fault
    mp_stale_page = page;
    mp_stale_gen = gen;
    return 1;
  }
  mp_stale_page = 0;
  bits_set(r->written, i, i + 1);
  size_t s = i, e = i + 1;
  int ok = 1;
  if (__atomic_fetch_add(&mp_faults, 1, __ATOMIC_RELAXED) >= MP_MAX_FAULTS
      || mprotect((void *)(r->lo + i * OS_PAGE), OS_PAGE, PROT_READ | PROT_WRITE) != 0) {
    // Too many faults, or kernel mappings (ENOMEM): the whole protected run around it, written.
    size_t np = (r->hi - r->lo) / OS_PAGE;
    while (s > 0 && bit_get(r->prot, s - 1)) s--;
    while (e < np && bit_get(r->prot, e)) e++;
    bits_set(r->written, s, e);
    ok = mprotect((void *)(r->lo + s * OS_PAGE), (e - s) * OS_PAGE, PROT_READ | PROT_WRITE) == 0;
  }
  mp_written(r->lo + s * OS_PAGE, r->lo + e * OS_PAGE, 0);  // (the period current now: above)
  return ok;
}

static void mp_handler(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  int write = 1;
#if defined(__x86_64__)
  write = (((ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#endif
  __atomic_fetch_add(&mp_inh, 1, __ATOMIC_SEQ_CST);
  int ours = si->si_code == SEGV_ACCERR && write && mp_fault((uintptr_t)si->si_addr);
  __atomic_fetch_sub(&mp_inh, 1, __ATOMIC_SEQ_CST);
  errno = saved;
  if (ours) return;
  // Not ours: the action before ours, as if it had been called.
  if ((mp_prev.sa_flags & SA_SIGINFO) && mp_prev.sa_sigaction) { mp_prev.sa_sigaction(sig, si, uc); return; }
  if (mp_prev.sa_handler != SIG_DFL && mp_prev.sa_handler != SIG_IGN) { mp_prev.sa_handler(sig); return; }
  struct sigaction d;
  memset(&d, 0, sizeof d);
  d.sa_handler = SIG_DFL;
  sigemptyset(&d.sa_mask);
  sigaction(sig, &d, 0);
  if (si->si_code <= 0) raise(sig);  // (sent, not a fault: a fault happens again on return)
}

/// The handler, installed on the first period; a period whose handler the program replaced
/// since is refused (all written). Replaced descriptors are unmapped once no handler runs.
static int mp_begin(void) {
  __atomic_fetch_add(&mp_gen, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n(&mp_n, 0, __ATOMIC_RELEASE);
  if (mp_nretired > 0 && __atomic_load_n(&mp_inh, __ATOMIC_SEQ_CST) == 0) {
    for (long k = 0; k < mp_nretired; k++) munmap(mp_retired[k], mp_retired[k]->bytes);
    mp_nretired = 0;
  }
  struct sigaction cur;
  if (sigaction(SIGSEGV, 0, &cur) != 0) return -1;
  if (mp_installed) {
    if (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != mp_handler) return -1;
    mp_on = 1;
    return 0;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = mp_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigfillset(&sa.sa_mask);  // (stop signals wait until a fault is resolved)
  mp_prev = cur;
  if (sigaction(SIGSEGV, &sa, 0) != 0) return -1;
  mp_installed = 1;
  mp_on = 1;
  return 0;
}

static int mp_register(uintptr_t lo, uintptr_t hi) {
  long k = mp_n;
  if (!mp_on || k >= MP_RANGES || lo % OS_PAGE || hi % OS_PAGE || hi <= lo) return -1;
  size_t words = ((hi - lo) / OS_PAGE + 63) / 64;
  struct mp_range *r = mp[k];
  if (r && r->lo == lo && r->hi == hi) {
    madvise((char *)r + OS_PAGE, r->bytes - OS_PAGE, MADV_DONTNEED);  // (the bits: zero again)
  } else {
    if (r && mp_nretired == MP_RETIRED) return -1;  // (handlers kept running: unmapped none)
    // One mapping: the descriptor in its first page, the three bitmaps after it.
    size_t bytes = OS_PAGE + (3 * words * 8 + OS_PAGE - 1) / OS_PAGE * OS_PAGE;
    void *m = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -1;
    struct mp_range *n = m;
    n->lo = lo;
    n->hi = hi;
    n->bytes = bytes;
    n->prot = (uint64_t *)((char *)m + OS_PAGE);
    n->clean = n->prot + words;
    n->written = n->clean + words;
    __atomic_store_n(&mp[k], n, __ATOMIC_RELEASE);
    if (r) mp_retired[mp_nretired++] = r;
  }
  if (k + 1 > mp_known) __atomic_store_n(&mp_known, k + 1, __ATOMIC_RELEASE);
  __atomic_store_n(&mp_n, k + 1, __ATOMIC_RELEASE);
  return 0;
}

int goalloc_dirty_mark_pages(uintptr_t lo, uintptr_t hi, int track) {
  if (mode != GOALLOC_DIRTY_MPROTECT || !mp_on) return -1;
  struct mp_range *r = mp_find(lo);
  if (!r || hi > r->hi || lo % OS_PAGE || hi % OS_PAGE || hi <= lo) return -1;
  size_t i = (lo - r->lo) / OS_PAGE, j = (hi - r->lo) / OS_PAGE;
  if (!track) { bits_set(r->clean, i, j); return 0; }
  if (mp_runs >= MP_MAX_RUNS) return -1;
  bits_set(r->prot, i, j);
  if (mprotect((void *)lo, hi - lo, PROT_READ) != 0) { bits_clear(r->prot, i, j); return -1; }
  bits_set(r->clean, i, j);
  mp_runs++;
  return 0;
}

void goalloc_dirty_span_alloc(uintptr_t lo, uintptr_t hi) {
  if (!__atomic_load_n(&mp_on, __ATOMIC_ACQUIRE) || mode != GOALLOC_DIRTY_MPROTECT) return;
  mp_written(lo, hi, 1);
}

void goalloc_dirty_note_protect(uintptr_t lo, uintptr_t hi) {
  if (__atomic_load_n(&mp_n, __ATOMIC_ACQUIRE) == 0 || mode != GOALLOC_DIRTY_MPROTECT) return;
  mp_written(lo, hi, 0);
  for (uintptr_t a = lo; a < hi;) {  // never touched by the handler or mp_end again (even after it)
    struct mp_range *r = mp_find(a);
    if (!r) { a = mp_next(a); continue; }
    uintptr_t b = hi < r->hi ? hi : r->hi;
    bits_clear(r->prot, (a - r->lo) / OS_PAGE, (b - r->lo) / OS_PAGE);
    a = b;
  }
}

static long mp_scan(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max) {
  uintptr_t at = *lo;
  struct mp_range *r = mp_find(at);
  if (!r || hi > r->hi) return -1;
  long n = 0;
  for (size_t i = (at - r->lo) / OS_PAGE, j = (hi - r->lo) / OS_PAGE; i < j; i++) {
    if (i % 64 == 0 && i + 64 <= j && (r->clean[i / 64] & ~r->written[i / 64]) == ~0ull) { i += 63; continue; }
    if (bit_get(r->clean, i) && !bit_get(r->written, i)) continue;
    uintptr_t a = r->lo + i * OS_PAGE;
    if (!put_page(out, &n, max, a)) { *lo = a; return n; }
  }
  *lo = hi;
  return n;
}

/// The period's end: every page it made read-only writable again.
static void mp_end(void) {
  if (!mp_on) return;
  long n = mp_n;
  for (long k = 0; k < n; k++) mp_unprotect(mp[k], 0, (mp[k]->hi - mp[k]->lo) / OS_PAGE);
  __atomic_store_n(&mp_on, 0, __ATOMIC_RELEASE);  // (the ranges stay listed until the next begin)
  mp_runs = 0;
  __atomic_store_n(&mp_faults, 0, __ATOMIC_RELAXED);
}

/// In a fork child: the parent's period ended, its pages writable again; the threads that were
/// in the handler are not here.
static void mp_fork_child(void) {
  mp_end();
  mp_inh = 0;
}
