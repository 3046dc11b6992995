// See CGoAllocShim.h. Nothing here allocates.
#define _GNU_SOURCE
#define GOALLOC_SIZECLASSES_DEFINE  // the size-class tables live here (goalloc_sizeclasses.h)
#include "CGoAllocShim.h"
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

__thread void *goalloc_tls_cache __attribute__((tls_model("initial-exec"))) = 0;
__thread uint32_t goalloc_tls_state __attribute__((tls_model("initial-exec"))) = 0;
__thread void *goalloc_tls_slow_cache __attribute__((tls_model("initial-exec"))) = 0;
void *goalloc_global_heap_ = 0;

void *goalloc_sys_map(size_t len) {
  int saved = errno;
  void *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  errno = saved;
  return p == MAP_FAILED ? 0 : p;
}

void *goalloc_sys_map_heap(size_t len) {
  int saved = errno;
  void *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  return p == MAP_FAILED ? 0 : p;
}

void *goalloc_sys_map_at(void *hint, size_t len) {
  int saved = errno;
  void *p = mmap(hint, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  errno = saved;
  if (p == MAP_FAILED) return 0;
  if (p != hint) { munmap(p, len); return 0; }  // kernels before 4.17 treat the flag as a hint
  return p;
}

void **goalloc_span_table __attribute__((visibility("hidden"))) = 0;
uintptr_t goalloc_span_window __attribute__((visibility("hidden"))) = 0;

void **goalloc_span_table_init(void) {
  static int lock;
  while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {}
  if (!goalloc_span_table) {
    void **t = goalloc_sys_map((GOALLOC_SPAN_WINDOW >> 13) * sizeof(void *));
    if (t) {
      goalloc_span_table = t;
      __atomic_store_n(&goalloc_span_window, GOALLOC_SPAN_WINDOW, __ATOMIC_RELEASE);
    }
  }
  __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
  return goalloc_span_table;
}

static uintptr_t arena_hint = GOALLOC_WINDOW_BASE;
uintptr_t goalloc_arena_hint_take(size_t len) { return __atomic_fetch_add(&arena_hint, len, __ATOMIC_RELAXED); }

void goalloc_sys_unmap(void *p, size_t len) { int saved = errno; munmap(p, len); errno = saved; }

int goalloc_sys_release(void *p, size_t len) {
  int saved = errno;
  int r = madvise(p, len, MADV_DONTNEED);
  errno = saved;
  return r;
}

void goalloc_futex_wait(uint32_t *addr, uint32_t expected) {
  int saved = errno;
  syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, 0, 0, 0);
  errno = saved;
}

void goalloc_futex_wake(uint32_t *addr, int n) {
  int saved = errno;
  syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, 0, 0, 0);
  errno = saved;
}

void goalloc_sys_yield(void) { sched_yield(); }

uint64_t goalloc_nanotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void goalloc_set_errno(int e) { errno = e; }
int goalloc_errno_enomem(void) { return ENOMEM; }
int goalloc_errno_einval(void) { return EINVAL; }
void goalloc_abort(void) { abort(); }
long goalloc_gettid(void) { return syscall(SYS_gettid); }

// MARK: threads and processes

static pthread_key_t thread_key;
static int thread_key_state;  // 0 none, 1 creating, 2 ready, 3 failed

int goalloc_thread_key_init(void (*destructor)(void *)) {
  int expected = 0;
  if (__atomic_compare_exchange_n(&thread_key_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    int ok = pthread_key_create(&thread_key, destructor) == 0;
    __atomic_store_n(&thread_key_state, ok ? 2 : 3, __ATOMIC_RELEASE);
  }
  while (__atomic_load_n(&thread_key_state, __ATOMIC_ACQUIRE) == 1) sched_yield();
  return __atomic_load_n(&thread_key_state, __ATOMIC_ACQUIRE) == 2;
}

void goalloc_thread_key_set(void *cache) {
  if (__atomic_load_n(&thread_key_state, __ATOMIC_ACQUIRE) == 2) pthread_setspecific(thread_key, cache);
}

static int atfork_registered;
void goalloc_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  int expected = 0;
  if (__atomic_compare_exchange_n(&atfork_registered, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    pthread_atfork(prepare, parent, child);
}

int goalloc_start_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  pthread_attr_t attr;
  int saved = errno;
  if (pthread_attr_init(&attr) != 0) return 0;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int ok = pthread_create(&t, &attr, fn, arg) == 0;
  pthread_attr_destroy(&attr);
  errno = saved;
  return ok;
}

void goalloc_sleep_ns(uint64_t ns) {
  struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
  int saved = errno;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  errno = saved;
}

uint64_t goalloc_memlimit_from_env(void) {
  if (environ == 0) return 0;
  const char *s = getenv("GOALLOC_MEMLIMIT");
  if (!s || !*s) return 0;
  uint64_t v = 0;
  while (*s >= '0' && *s <= '9') { v = v * 10 + (uint64_t)(*s - '0'); s++; }
  uint64_t mul = 1;
  switch (*s) {
    case 'K': case 'k': mul = 1ull << 10; break;
    case 'M': case 'm': mul = 1ull << 20; break;
    case 'G': case 'g': mul = 1ull << 30; break;
    case 'T': case 't': mul = 1ull << 40; break;
    default: break;
  }
  return v * mul;
}

/* Reads a small /proc file into buf (NUL-terminated); 0 on failure. errno is left alone. */
static int read_proc(const char *path, char *buf, size_t size) {
  int saved = errno;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
  if (fd >= 0) close(fd);
  errno = saved;
  if (n <= 0) return 0;
  buf[n] = 0;
  return 1;
}

uint64_t goalloc_rss_bytes(void) {
  char buf[128];
  if (!read_proc("/proc/self/statm", buf, sizeof buf)) return 0;
  const char *p = buf;
  while (*p && *p != ' ') p++;  /* skip size */
  while (*p == ' ') p++;
  uint64_t pages = 0;
  while (*p >= '0' && *p <= '9') { pages = pages * 10 + (uint64_t)(*p - '0'); p++; }
  return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

int goalloc_only_live_thread(void) {
  char buf[512];
  if (!read_proc("/proc/self/stat", buf, sizeof buf)) return 0;
  const char *p = strrchr(buf, ')');  /* the command name may hold spaces and parentheses */
  if (!p || p[1] != ' ') return 0;
  char state = p[2];
  int field = 3;
  p += 2;
  while (*p && field < 20) { if (*p == ' ') field++; p++; }  /* field 20: num_threads */
  long threads = 0;
  while (*p >= '0' && *p <= '9') { threads = threads * 10 + (*p - '0'); p++; }
  /* A main thread that left through pthread_exit stays a zombie (state Z) and counted until the
     whole group is gone: the caller (never the main thread) is alone when 2 are left. */
  return (state == 'Z' || state == 'X') && threads <= 2;
}

static void (*load_hook)(void);
void goalloc_set_load_hook(void (*hook)(void)) { __atomic_store_n(&load_hook, hook, __ATOMIC_RELEASE); }

/* Defined by libgoalloc (Exports.swift): sets the heap up at load time, when libc is ready. */
extern void goalloc_on_load(void) __attribute__((weak));

__attribute__((constructor)) static void goalloc_shim_init(void) {
  if (goalloc_on_load) { goalloc_on_load(); return; }
  void (*hook)(void) = __atomic_load_n(&load_hook, __ATOMIC_ACQUIRE);
  if (hook) hook();
}

static void (*exit_hook)(void);
void goalloc_set_exit_hook(void (*hook)(void)) { __atomic_store_n(&exit_hook, hook, __ATOMIC_RELEASE); }

__attribute__((destructor)) static void goalloc_shim_fini(void) {
  void (*hook)(void) = __atomic_load_n(&exit_hook, __ATOMIC_ACQUIRE);
  if (hook) hook();
}

// MARK: diagnostics

void goalloc_write_len(int fd, const char *s, size_t n) {
  int saved = errno;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) { if (errno == EINTR) continue; break; }
    s += w; n -= (size_t)w;
  }
  errno = saved;
}

static int stats_fd = -1;
void goalloc_stats_fd_init(void) {
  if (stats_fd >= 0) return;
  int saved = errno;
  stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 64);
  errno = saved;
}
int goalloc_stats_fd(void) { return stats_fd >= 0 ? stats_fd : 2; }

void goalloc_write(int fd, const char *s) { goalloc_write_len(fd, s, strlen(s)); }

void goalloc_write_u64(int fd, uint64_t v) {
  char buf[24]; int i = 24;
  do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  goalloc_write_len(fd, buf + i, (size_t)(24 - i));
}

void goalloc_write_hex(int fd, uint64_t v) {
  char buf[20]; int i = 20;
  do { buf[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
  buf[--i] = 'x'; buf[--i] = '0';
  goalloc_write_len(fd, buf + i, (size_t)(20 - i));
}

void goalloc_report(const char *op, const char *what, uintptr_t addr) {
  char line[192]; size_t n = 0;
#define PUT(str) do { const char *q_ = (str); while (*q_ && n < sizeof line - 24) line[n++] = *q_++; } while (0)
  PUT("goalloc: "); PUT(op); PUT("(): "); PUT(what); PUT(": ");
  char hex[20]; int i = 20; uint64_t v = addr;
  do { hex[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
  PUT("0x"); while (i < 20) line[n++] = hex[i++];
  line[n++] = '\n';
#undef PUT
  goalloc_write_len(2, line, n);
}

// MARK: tracing and profiling output

int goalloc_debug_value(const char *key, char *buf, size_t len) {
  if (environ == 0 || len == 0) return 0;
  const char *s = getenv("GOALLOC_DEBUG");
  size_t kl = strlen(key);
  while (s && *s) {
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    if (n > kl && strncmp(s, key, kl) == 0 && s[kl] == '=') {
      size_t vl = n - kl - 1;
      if (vl >= len) vl = len - 1;
      memcpy(buf, s + kl + 1, vl);
      buf[vl] = 0;
      return 1;
    }
    s = end ? end + 1 : 0;
  }
  return 0;
}

int goalloc_open_output(const char *path) {
  if (strcmp(path, "1") == 0 || strcmp(path, "stderr") == 0 || strcmp(path, "-") == 0) return 2;
  /* "%p" in the name becomes the process id, so a program's children write files of their own. */
  char name[4096];
  size_t n = 0;
  for (const char *s = path; *s && n < sizeof name - 24; s++) {
    if (s[0] == '%' && s[1] == 'p') {
      char digits[24]; int i = 24; long pid = (long)getpid();
      do { digits[--i] = (char)('0' + pid % 10); pid /= 10; } while (pid);
      while (i < 24) name[n++] = digits[i++];
      s++;
    } else {
      name[n++] = *s;
    }
  }
  name[n] = 0;
  int saved = errno;
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  errno = saved;
  return fd;
}

void goalloc_close_output(int fd) { if (fd > 2) { int saved = errno; close(fd); errno = saved; } }

static int trace_lock_word;
// Mapped on the first event: a static buffer would sit among the library's other globals and
// keep their pages apart (RSS in every process, traced or not).
#define TRACE_BUF_BYTES (1 << 16)
static char *trace_buf;
static size_t trace_len;
static int trace_buf_fd = -1;

void goalloc_trace_lock(void) {
  while (__atomic_exchange_n(&trace_lock_word, 1, __ATOMIC_ACQUIRE)) sched_yield();
}
void goalloc_trace_unlock(void) { __atomic_store_n(&trace_lock_word, 0, __ATOMIC_RELEASE); }
void goalloc_trace_reset_lock(void) { __atomic_store_n(&trace_lock_word, 0, __ATOMIC_RELEASE); }

static void trace_flush_locked(void) {
  if (trace_len && trace_buf_fd >= 0) goalloc_write_len(trace_buf_fd, trace_buf, trace_len);
  trace_len = 0;
}

void goalloc_trace_flush(void) {
  goalloc_trace_lock();
  trace_flush_locked();
  goalloc_trace_unlock();
}

static char *put_hex(char *p, uint64_t v) {
  char tmp[16]; int i = 16;
  do { tmp[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
  *p++ = '0'; *p++ = 'x';
  while (i < 16) *p++ = tmp[i++];
  return p;
}
static char *put_dec(char *p, uint64_t v) {
  char tmp[20]; int i = 20;
  do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  while (i < 20) *p++ = tmp[i++];
  return p;
}

void goalloc_trace_event(int fd, char op, long tid, uintptr_t addr, size_t size, unsigned cls,
                         void *const *pcs, int npcs) {
  char line[128 + 19 * 64];
  char *p = line;
  *p++ = op; *p++ = ' ';
  p = put_dec(p, (uint64_t)tid); *p++ = ' ';
  p = put_hex(p, addr);
  if (op == 'a') { *p++ = ' '; p = put_dec(p, size); *p++ = ' '; p = put_dec(p, cls); }
  if (npcs > 64) npcs = 64;
  for (int i = 0; i < npcs; i++) { *p++ = ' '; p = put_hex(p, (uint64_t)(uintptr_t)pcs[i]); }
  *p++ = '\n';
  size_t n = (size_t)(p - line);
  goalloc_trace_lock();
  if (!trace_buf && !(trace_buf = goalloc_sys_map(TRACE_BUF_BYTES))) {
    goalloc_write_len(fd, line, n);  // no memory for a buffer: unbuffered
    goalloc_trace_unlock();
    return;
  }
  if (trace_buf_fd != fd) { trace_flush_locked(); trace_buf_fd = fd; }
  if (trace_len + n > TRACE_BUF_BYTES) trace_flush_locked();
  memcpy(trace_buf + trace_len, line, n);
  trace_len += n;
  goalloc_trace_unlock();
}

void goalloc_write_maps(int fd) {
  int saved = errno;
  int m = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (m < 0) { errno = saved; return; }
  char buf[4096], line[512];
  size_t ll = 0;
  ssize_t n;
  while ((n = read(m, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      char ch = buf[i];
      if (ch != '\n') { if (ll < sizeof line - 1) line[ll++] = ch; continue; }
      line[ll] = 0;
      /* start-end perms offset dev inode path */
      char *dash = strchr(line, '-'), *sp1 = strchr(line, ' ');
      if (dash && sp1 && sp1[1] && sp1[3] == 'x') {
        char *off = strchr(sp1 + 1, ' ');
        char *path = strchr(line, '/');
        if (off && path) {
          goalloc_write(fd, "# map 0x"); goalloc_write_len(fd, line, (size_t)(dash - line));
          goalloc_write(fd, " 0x"); goalloc_write_len(fd, dash + 1, (size_t)(sp1 - dash - 1));
          goalloc_write(fd, " 0x"); goalloc_write_len(fd, off + 1, 8);
          goalloc_write(fd, " "); goalloc_write(fd, path); goalloc_write(fd, "\n");
        }
      }
      ll = 0;
    }
  }
  close(m);
  errno = saved;
}

#include <sys/uio.h>
static int read_words(const void *addr, uintptr_t out[2]) {
  struct iovec local = { out, 2 * sizeof(uintptr_t) }, remote = { (void *)addr, 2 * sizeof(uintptr_t) };
  int saved = errno;
  ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  errno = saved;
  return r == (ssize_t)(2 * sizeof(uintptr_t));
}

static int frame_pointer_walk(void **pcs, int max) {
  static void *self_base_fp;
  Dl_info me, di;
  if (!self_base_fp && dladdr((void *)frame_pointer_walk, &me)) self_base_fp = me.dli_fbase;
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  int out = 0, leaving = 1;
  for (int depth = 0; depth < 64 && out < max; depth++) {
    uintptr_t w[2];  /* saved fp, return address */
    if (fp == 0 || (fp & 7) || !read_words((void *)fp, w)) break;
    uintptr_t next = w[0], ret = w[1];
    if (ret == 0) break;
    if (!dladdr((void *)ret, &di)) break;  /* not code: the chain went through a frame without a frame pointer */
    if (leaving && di.dli_fbase == self_base_fp) {
      /* still inside the allocator */
    } else {
      leaving = 0;
      pcs[out++] = (void *)ret;
    }
    if (next <= fp || next - fp > (1u << 20)) break;
    fp = next;
  }
  return out;
}

static __thread int in_backtrace;
int goalloc_backtrace(void **pcs, int max, int skip) {
  if (in_backtrace) return 0;
  in_backtrace = 1;
  void *tmp[80];
  int want = max + skip;
  if (want > 80) want = 80;
  int n = backtrace(tmp, want);
  in_backtrace = 0;
  /* Drop the allocator's own frames: leading frames in the object that holds this function
     (libgoalloc.so; in a statically linked test binary, `skip` frames instead). */
  static void *self_base;
  if (!self_base) {
    Dl_info me;
    if (dladdr((void *)goalloc_backtrace, &me)) self_base = me.dli_fbase;
  }
  int first = 0;
  Dl_info di;
  while (first < n && dladdr(tmp[first], &di) && di.dli_fbase == self_base && first < 24) first++;
  if (first < n && first < 24) {
    int out = 0;
    for (int i = first; i < n && out < max; i++) pcs[out++] = tmp[i];
    return out;
  }
  /* The unwinder could not leave the allocator (some optimized Embedded Swift frames defeat
     it): walk the frame-pointer chain instead (the allocator keeps frame pointers). Every word
     is read through process_vm_readv, so a caller without frame pointers ends the walk with
     EFAULT instead of a crash. */
  return frame_pointer_walk(pcs, max);
}

void goalloc_write_frame(int fd, void *pc) {
  Dl_info info = {0};
  int saved = errno;
  int found = dladdr(pc, &info);
  if (found && info.dli_sname) {
    goalloc_write(fd, info.dli_sname);
  } else if (found && info.dli_fname) {
    const char *base = strrchr(info.dli_fname, '/');
    goalloc_write(fd, base ? base + 1 : info.dli_fname);
    goalloc_write(fd, "+");
    goalloc_write_hex(fd, (uint64_t)((uintptr_t)pc - (uintptr_t)info.dli_fbase));
  } else {
    goalloc_write_hex(fd, (uint64_t)(uintptr_t)pc);
  }
  errno = saved;
}

static __thread uint64_t rng_state;
uint64_t goalloc_random64(void) {
  if (rng_state == 0) rng_state = goalloc_nanotime() ^ ((uint64_t)goalloc_gettid() << 32) ^ 0x9E3779B97F4A7C15ull;
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* log and exp for the heap profile's sampling, so the library does not pull in libm (about 300 KiB
 * of resident text in every process). Accurate to ~1e-12 relative; inputs are finite. */
static double ln_pos(double x) {  /* x > 0 */
  union { double d; uint64_t u; } v = { x };
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;  /* m in [1, 2) */
  double m = v.d;
  if (m > 1.4142135623730951) { m *= 0.5; e += 1; }              /* m in [0.707, 1.414] */
  double t = (m - 1) / (m + 1), t2 = t * t, term = t, sum = 0;     /* ln m = 2 atanh t */
  for (int k = 1; k < 40; k += 2) { sum += term / k; term *= t2; }
  return 2 * sum + e * 0.6931471805599453;
}

static double exp_neg(double x) {  /* e^-x for x >= 0 */
  if (x > 700) return 0;
  int k = (int)(x / 0.6931471805599453);
  double r = x - k * 0.6931471805599453, term = 1, sum = 1;        /* r in [0, ln 2) */
  for (int i = 1; i < 24; i++) { term *= -r / i; sum += term; }
  union { double d; uint64_t u; } v = { sum };
  v.u -= (uint64_t)k << 52;                                        /* sum / 2^k (sum >= 0.5) */
  return k > 1021 ? 0 : v.d;
}

uint64_t goalloc_next_sample(uint64_t mean) {
  if (mean <= 1) return 1;
  double u = ((double)(goalloc_random64() >> 11) + 1.0) / 9007199254740993.0;  /* (0, 1] */
  double d = -ln_pos(u) * (double)mean;
  return d < 1 ? 1 : (uint64_t)d;
}

uint64_t goalloc_scale_sample(uint64_t size, uint64_t rate) {
  if (rate <= 1 || size == 0) return size;
  double scale = 1.0 / (1.0 - exp_neg((double)size / (double)rate));
  return (uint64_t)((double)size * scale);
}

// MARK: configuration

static int has_word(const char *s, const char *key, const char *value) {
  size_t kl = strlen(key), vl = strlen(value);
  while (s && *s) {
    const char *end = strchr(s, ',');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    if (len == kl + 1 + vl && strncmp(s, key, kl) == 0 && s[kl] == '=' && strncmp(s + kl + 1, value, vl) == 0)
      return 1;
    s = end ? end + 1 : 0;
  }
  return 0;
}


uint32_t goalloc_debug_flags_from_env(void) {
  if (environ == 0) return 0;
  const char *s = getenv("GOALLOC_DEBUG");
  uint32_t f = GOALLOC_DEBUG_PARSED;
  if (!s) return f;
  if (has_word(s, "stats", "1")) f |= GOALLOC_DEBUG_STATS;
  if (has_word(s, "badfree", "warn")) f |= GOALLOC_DEBUG_BADFREE_WARN;
  if (has_word(s, "check", "1")) f |= GOALLOC_DEBUG_CHECK;
  if (has_word(s, "scavenger", "0")) f |= GOALLOC_DEBUG_NO_SCAVENGER;
  return f;
}
