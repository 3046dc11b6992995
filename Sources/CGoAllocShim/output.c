// Output without stdio or malloc (goalloc_output.h): whole writes (EINTR retried, errno kept),
// decimal and hex numbers, the one-line bad-pointer report on fd 2, the private stats descriptor,
// text blocks built on the stack and written with one write, and opening (or checking) the output
// files GOALLOC_DEBUG names.
#define _GNU_SOURCE
#include "goalloc_output.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

void goalloc_write_len(int fd, const char *s, size_t n) {
  int saved = errno;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) { if (errno == EINTR) continue; break; }
    s += w; n -= (size_t)w;
  }
  errno = saved;
}

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

void goalloc_report_corruption(const char *what, uintptr_t addr) {
  char line[224]; size_t n = 0;
  const char *parts[2] = { "goalloc: heap corruption detected: ", what };
  for (int k = 0; k < 2; k++) for (const char *q = parts[k]; *q && n < sizeof line - 24; q++) line[n++] = *q;
  char hex[20]; int i = 20; uint64_t v = addr;
  do { hex[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
  line[n++] = ' '; line[n++] = '0'; line[n++] = 'x';
  while (i < 20) line[n++] = hex[i++];
  line[n++] = '\n';
  goalloc_write_len(2, line, n);
}

static int stats_fd = -1;
void goalloc_stats_fd_init(void) {
  if (stats_fd >= 0) return;
  int saved = errno;
  stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 64);
  errno = saved;
}
int goalloc_stats_fd(void) { return stats_fd >= 0 ? stats_fd : 2; }

static int is_stderr_name(const char *path) {
  return strcmp(path, "1") == 0 || strcmp(path, "stderr") == 0 || strcmp(path, "-") == 0;
}

/* "%p" in the name becomes the process id, so a program's children write files of their own. */
static void expand_name(const char *path, char *name, size_t size) {
  size_t n = 0;
  for (const char *s = path; *s && n < size - 24; s++) {
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
}

int goalloc_open_output(const char *path) {
  if (is_stderr_name(path)) return 2;
  char name[4096];
  expand_name(path, name, sizeof name);
  int saved = errno;
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fd = errno > 0 ? -errno : -1;
  errno = saved;
  return fd;
}

int goalloc_output_check(const char *path) {
  if (is_stderr_name(path)) return 0;
  char name[4096];
  expand_name(path, name, sizeof name);
  int saved = errno, result = 0;
  struct stat st;
  if (stat(name, &st) == 0) {
    if (S_ISDIR(st.st_mode)) result = EISDIR;
    else if (access(name, W_OK) != 0) result = errno;
  } else if (errno != ENOENT) {
    result = errno;
  } else {
    /* A new file: its folder must exist and be writable. */
    char *slash = strrchr(name, '/');
    if (slash == name) slash[1] = 0;
    else if (slash) *slash = 0;
    else { name[0] = '.'; name[1] = 0; }
    if (stat(name, &st) != 0) result = errno;
    else if (!S_ISDIR(st.st_mode)) result = ENOTDIR;
    else if (access(name, W_OK | X_OK) != 0) result = errno;
  }
  errno = saved;
  return result;
}

void goalloc_close_output(int fd) { if (fd > 2) { int saved = errno; close(fd); errno = saved; } }

void goalloc_text_put(struct goalloc_text *t, const char *s, size_t n) {
  while (n-- > 0 && t->len < sizeof t->bytes) t->bytes[t->len++] = *s++;
}

void goalloc_text_str(struct goalloc_text *t, const char *s) { goalloc_text_put(t, s, strlen(s)); }

void goalloc_text_u64(struct goalloc_text *t, uint64_t v) {
  char buf[24]; int i = 24;
  do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  goalloc_text_put(t, buf + i, (size_t)(24 - i));
}

void goalloc_text_write_block(int fd, void (*fill)(struct goalloc_text *, void *), void *context) {
  struct goalloc_text t;
  t.len = 0;
  fill(&t, context);
  goalloc_write_len(fd, t.bytes, t.len);
}

// MARK: gctrace

/// v / 10^dec with exactly `dec` decimals ("1.25" for 125, 2).
static void text_fixed(struct goalloc_text *t, uint64_t v, int dec) {
  uint64_t p = 1;
  for (int i = 0; i < dec; i++) p *= 10;
  goalloc_text_u64(t, v / p);
  if (dec == 0) return;
  char buf[8];
  uint64_t f = v % p;
  for (int i = dec - 1; i >= 0; i--) { buf[i] = (char)('0' + f % 10); f /= 10; }
  goalloc_text_put(t, ".", 1);
  goalloc_text_put(t, buf, (size_t)dec);
}

/// Nanoseconds as milliseconds the way gctrace reads them: whole from 10 ms, else two
/// significant digits with at most three decimals ("0.010", "1.2", "0").
static void text_ms(struct goalloc_text *t, uint64_t ns) {
  if (ns >= 10000000ull) { goalloc_text_u64(t, ns / 1000000ull); return; }
  uint64_t us = ns / 1000ull;
  if (us == 0) { goalloc_text_put(t, "0", 1); return; }
  int dec = 3;
  while (us >= 100) { us /= 10; dec--; }
  text_fixed(t, us, dec);
}

static void gctrace_text(struct goalloc_text *tp, const struct goalloc_gctrace *g) {
  struct goalloc_text t;
  t.len = 0;
  goalloc_text_str(&t, "gc ");
  goalloc_text_u64(&t, g->cycle);
  goalloc_text_str(&t, " @");
  text_fixed(&t, g->since_ns / 1000000ull, 3);
  goalloc_text_str(&t, "s ");
  goalloc_text_u64(&t, g->percent);
  goalloc_text_str(&t, "%: ");
  for (int i = 0; i < 3; i++) {
    if (i) goalloc_text_put(&t, "+", 1);
    text_ms(&t, g->clock_ns[i]);
  }
  goalloc_text_str(&t, " ms clock, ");
  if (g->conc) {
    static const char seps[5] = {'+', '/', '/', '+', 0};
    for (int i = 0; i < 5; i++) {
      text_ms(&t, g->cpu_split_ns[i]);
      if (seps[i]) goalloc_text_put(&t, &seps[i], 1);
    }
  } else {
    text_ms(&t, g->cpu_ns);
  }
  goalloc_text_str(&t, " ms cpu, ");
  goalloc_text_u64(&t, g->heap_start >> 20);
  goalloc_text_str(&t, "->");
  goalloc_text_u64(&t, g->heap_end >> 20);
  goalloc_text_str(&t, "->");
  goalloc_text_u64(&t, g->heap_marked >> 20);
  goalloc_text_str(&t, " MB, ");
  goalloc_text_u64(&t, g->goal >> 20);
  goalloc_text_str(&t, " MB goal, ");
  goalloc_text_u64(&t, g->stacks >> 20);
  goalloc_text_str(&t, " MB stacks, ");
  goalloc_text_u64(&t, g->globals >> 20);
  goalloc_text_str(&t, " MB globals, ");
  goalloc_text_u64(&t, g->procs);
  goalloc_text_str(&t, " P");
  if (g->conc) {
    goalloc_text_str(&t, ", conc ");
    goalloc_text_str(&t, g->conc);
    goalloc_text_str(&t, " ");
    goalloc_text_u64(&t, g->dirty_pages);
    goalloc_text_str(&t, " pages");
  }
  goalloc_text_str(&t, g->forced ? " (forced)\n" : "\n");
  *tp = t;
}

size_t goalloc_format_gctrace(const struct goalloc_gctrace *g, char *out, size_t cap) {
  struct goalloc_text t;
  gctrace_text(&t, g);
  size_t n = t.len < cap ? t.len : cap;
  memcpy(out, t.bytes, n);
  return n;
}

void goalloc_write_gctrace(const struct goalloc_gctrace *g) {
  struct goalloc_text t;
  gctrace_text(&t, g);
  goalloc_write_len(2, t.bytes, t.len);
}
