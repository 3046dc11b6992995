// glibc's reporting entry points, answered with GoAlloc's own figures (MemStats, read through
// goalloc_read_memstats): mallinfo, mallinfo2, malloc_stats and malloc_info. Nothing here
// allocates; numbers are formatted on the stack.
//
// mallinfo's fields, in GoAlloc's terms:
//   arena     heap bytes obtained from the OS and held (HeapSys - HeapReleased)
//   ordblks   spans in use (each a run of pages cut into slots)
//   smblks    0 (no fastbins)            hblks    live large objects (their own spans)
//   hblkhd    0 (no mmap'd chunks apart from the heap)
//   usmblks   0 (unused since glibc 2.x) fsmblks  0
//   uordblks  bytes in live objects (HeapAlloc)
//   fordblks  bytes held but free: free slots in spans plus free pages (arena - uordblks)
//   keepcost  free pages not yet returned to the OS (HeapIdle - HeapReleased)
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../../include/goalloc.h"

#define EXPORT __attribute__((visibility("default")))

struct goalloc_mallinfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct goalloc_mallinfo {
  int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

static struct goalloc_mallinfo2 figures(void) {
  struct goalloc_memstats m;
  memset(&m, 0, sizeof m);
  goalloc_read_memstats(&m);
  struct goalloc_mallinfo2 r;
  memset(&r, 0, sizeof r);
  uint64_t held = m.heap_sys > m.heap_released ? m.heap_sys - m.heap_released : 0;
  r.arena = (size_t)held;
  r.ordblks = (size_t)m.spans_in_use;
  r.hblks = (size_t)(m.large_allocs - m.large_frees);
  r.uordblks = (size_t)m.heap_alloc;
  r.fordblks = (size_t)(held > m.heap_alloc ? held - m.heap_alloc : 0);
  r.keepcost = (size_t)(m.heap_idle > m.heap_released ? m.heap_idle - m.heap_released : 0);
  return r;
}

EXPORT struct goalloc_mallinfo2 mallinfo2(void) { return figures(); }

/// glibc's int fields wrap; these saturate at INT_MAX instead.
static int clamp(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

EXPORT struct goalloc_mallinfo mallinfo(void) {
  struct goalloc_mallinfo2 f = figures();
  struct goalloc_mallinfo r = {
    clamp(f.arena), clamp(f.ordblks), clamp(f.smblks), clamp(f.hblks), clamp(f.hblkhd),
    clamp(f.usmblks), clamp(f.fsmblks), clamp(f.uordblks), clamp(f.fordblks), clamp(f.keepcost),
  };
  return r;
}

/// Appends `s` at *p (bounded by end).
static void put(char **p, char *end, const char *s) {
  while (*s && *p < end) *(*p)++ = *s++;
}
static void put_u64(char **p, char *end, uint64_t v) {
  char tmp[20];
  int i = 20;
  do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  while (i < 20 && *p < end) *(*p)++ = tmp[i++];
}
/// "label" padded to 23 columns, "= value\n" (glibc's malloc_stats layout).
static void row(char **p, char *end, const char *label, uint64_t v) {
  size_t n = strlen(label);
  put(p, end, label);
  while (n++ < 21 && *p < end) *(*p)++ = ' ';
  put(p, end, "= ");
  char num[24], *q = num;
  put_u64(&q, num + sizeof num, v);
  for (size_t w = (size_t)(q - num); w < 10 && *p < end; w++) *(*p)++ = ' ';
  for (char *r = num; r < q && *p < end; r++) *(*p)++ = *r;
  put(p, end, "\n");
}

EXPORT void malloc_stats(void) {
  struct goalloc_memstats m;
  memset(&m, 0, sizeof m);
  goalloc_read_memstats(&m);
  struct goalloc_mallinfo2 f = figures();
  char buf[1024], *p = buf, *end = buf + sizeof buf;
  put(&p, end, "Arena 0 (goalloc heap):\n");
  row(&p, end, "system bytes", f.arena);
  row(&p, end, "in use bytes", f.uordblks);
  put(&p, end, "Total (incl. mmap):\n");
  row(&p, end, "system bytes", m.sys);
  row(&p, end, "in use bytes", f.uordblks);
  row(&p, end, "max mmap regions", 0);
  row(&p, end, "max mmap bytes", 0);
  row(&p, end, "live objects", m.heap_objects);
  row(&p, end, "thread caches", m.thread_caches);
  const char *q = buf;
  while (q < p) {
    ssize_t w = write(2, q, (size_t)(p - q));
    if (w <= 0) break;
    q += w;
  }
}

/// One `<tag type="T" [count="C"] size="S"/>` line.
static void xml_total(char **p, char *end, const char *tag, const char *type, int with_count, uint64_t count, uint64_t size) {
  put(p, end, "<"); put(p, end, tag); put(p, end, " type=\""); put(p, end, type); put(p, end, "\"");
  if (with_count) { put(p, end, " count=\""); put_u64(p, end, count); put(p, end, "\""); }
  put(p, end, " size=\""); put_u64(p, end, size); put(p, end, "\"/>\n");
}

/// glibc's XML layout (one heap, the totals); `options` must be 0 (EINVAL otherwise, as glibc).
EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0) return 22;  // EINVAL
  struct goalloc_memstats m;
  memset(&m, 0, sizeof m);
  goalloc_read_memstats(&m);
  struct goalloc_mallinfo2 f = figures();
  char buf[2048], *p = buf, *end = buf + sizeof buf - 1;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 0) {
      put(&p, end, "<malloc version=\"1\" allocator=\"goalloc\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n");
    }
    xml_total(&p, end, "total", "fast", 1, 0, 0);
    xml_total(&p, end, "total", "rest", 1, f.ordblks, f.fordblks);
    if (pass == 1) xml_total(&p, end, "total", "mmap", 1, 0, 0);
    xml_total(&p, end, "system", "current", 0, 0, f.arena);
    xml_total(&p, end, "system", "max", 0, 0, m.heap_sys);
    xml_total(&p, end, "aspace", "total", 0, 0, m.sys);
    xml_total(&p, end, "aspace", "mprotect", 0, 0, m.sys);
    if (pass == 0) put(&p, end, "</heap>\n");
  }
  put(&p, end, "</malloc>\n");
  *p = 0;
  return fputs(buf, fp) < 0 ? -1 : 0;
}
