// rel_common.h: small helpers shared by the Tests/Reliability C programs.
#ifndef REL_COMMON_H
#define REL_COMMON_H
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

// Allocator calls go through volatile function pointers so that the compiler cannot elide or
// fold them (it knows malloc's contract and may drop a malloc whose result is only tested).
__attribute__((unused)) static void *(*volatile rel_malloc)(size_t) = malloc;
__attribute__((unused)) static void *(*volatile rel_calloc)(size_t, size_t) = calloc;
__attribute__((unused)) static void *(*volatile rel_realloc)(void *, size_t) = realloc;
__attribute__((unused)) static void *(*volatile rel_reallocarray)(void *, size_t, size_t) = reallocarray;
__attribute__((unused)) static void (*volatile rel_free)(void *) = free;
__attribute__((unused)) static int (*volatile rel_posix_memalign)(void **, size_t, size_t) = posix_memalign;
__attribute__((unused)) static void *(*volatile rel_aligned_alloc)(size_t, size_t) = aligned_alloc;
__attribute__((unused)) static void *(*volatile rel_memalign)(size_t, size_t) = memalign;
__attribute__((unused)) static void *(*volatile rel_valloc)(size_t) = valloc;
__attribute__((unused)) static void *(*volatile rel_pvalloc)(size_t) = pvalloc;
__attribute__((unused)) static size_t (*volatile rel_usable)(void *) = malloc_usable_size;

__attribute__((unused)) static inline uintptr_t rel_addr(void *p) { __asm__ volatile("" : "+r"(p)); return (uintptr_t)p; }

// goalloc_check_heap when GoAlloc is loaded; 1 (nothing to check) otherwise.
__attribute__((unused)) static int rel_check_heap(void) {
  static int (*fn)(void);
  static int looked;
  if (!looked) { fn = (int (*)(void))dlsym(RTLD_DEFAULT, "goalloc_check_heap"); looked = 1; }
  return fn ? fn() : 1;
}

__attribute__((unused)) static int rel_goalloc_loaded(void) { return dlsym(RTLD_DEFAULT, "goalloc_check_heap") != NULL; }

__attribute__((unused)) static size_t rel_release(void) {
  size_t (*fn)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "goalloc_release_free_memory");
  return fn ? fn() : 0;
}

// A "VmRSS:"/"VmSize:" value from /proc/self/status in KiB (read with raw syscalls: no malloc).
__attribute__((unused)) static long rel_status_kib(const char *key) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  size_t kl = strlen(key);
  for (char *line = buf; line && *line; ) {
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') return strtol(line + kl + 1, NULL, 10);
    line = strchr(line, '\n');
    if (line) line++;
  }
  return -1;
}

// Output without stdio (no allocation, safe when malloc is failing).
__attribute__((unused)) static void rel_say(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 1) n = (int)sizeof buf - 1;
  if (n > 0) { ssize_t w = write(1, buf, (size_t)n); (void)w; }
}

__attribute__((unused)) static int rel_failures;
__attribute__((unused)) static void rel_fail(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  rel_say("FAIL: %s\n", buf);
  rel_failures++;
}

#endif
