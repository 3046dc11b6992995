// The allocation trace's output (goalloc_trace.h): each event formatted on the stack, appended to
// one process-wide 64 KiB buffer (mapped on the first event) under a spin lock, and written out
// when full, when the output changes, or on flush.
#include "goalloc_trace.h"
#include "goalloc_os.h"
#include "goalloc_output.h"
#include <sched.h>
#include <string.h>

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

enum { GC_LINE_MAX = 16 + 7 * 21 };
static size_t format_gc_line(char *line, uint64_t n, uint64_t ns, uint64_t before, uint64_t after,
                             uint64_t marked, uint64_t goal, uint64_t pause_ns, int forced) {
  char *p = line;
  *p++ = 'g';
  uint64_t v[7] = { n, ns, before, after, marked, goal, pause_ns };
  for (int i = 0; i < 7; i++) { *p++ = ' '; p = put_dec(p, v[i]); }
  *p++ = ' '; *p++ = forced ? '1' : '0';
  *p++ = '\n';
  return (size_t)(p - line);
}

void goalloc_write_gc_line(int fd, uint64_t n, uint64_t ns, uint64_t before, uint64_t after, uint64_t marked,
                           uint64_t goal, uint64_t pause_ns, int forced) {
  char line[GC_LINE_MAX];
  goalloc_write_len(fd, line, format_gc_line(line, n, ns, before, after, marked, goal, pause_ns, forced));
}

void goalloc_trace_gc(int fd, uint64_t n, uint64_t ns, uint64_t before, uint64_t after, uint64_t marked,
                      uint64_t goal, uint64_t pause_ns, int forced) {
  char line[GC_LINE_MAX];
  size_t len = format_gc_line(line, n, ns, before, after, marked, goal, pause_ns, forced);
  goalloc_trace_lock();
  if (!trace_buf && !(trace_buf = goalloc_sys_map(TRACE_BUF_BYTES))) {
    goalloc_write_len(fd, line, len);
    goalloc_trace_unlock();
    return;
  }
  if (trace_buf_fd != fd) { trace_flush_locked(); trace_buf_fd = fd; }
  if (trace_len + len > TRACE_BUF_BYTES) trace_flush_locked();
  memcpy(trace_buf + trace_len, line, len);
  trace_len += len;
  goalloc_trace_unlock();
}

void goalloc_write_sample(int fd, uint64_t size, const uintptr_t *pcs, int npcs) {
  char line[32 + 19 * 64];
  char *p = line;
  *p++ = 's'; *p++ = ' ';
  p = put_dec(p, size);
  if (npcs > 64) npcs = 64;
  for (int i = 0; i < npcs; i++) { *p++ = ' '; p = put_hex(p, (uint64_t)pcs[i]); }
  *p++ = '\n';
  goalloc_write_len(fd, line, (size_t)(p - line));
}
