// The allocator's settings from the environment (goalloc_env.h): GOALLOC_DEBUG's flags and
// key=value settings, and GOALLOC_MEMLIMIT. getenv does not allocate; `environ` is checked first
// because the first mallocs may come before libc has set it up (what must be decided then, the
// heap's placement, reads /proc/self/environ instead).
#include "goalloc_env.h"
#include "goalloc_proc.h"
#include <stdlib.h>
#include <string.h>

extern char **environ;

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
  const char *secure = getenv("GOALLOC_SECURE");
  if (secure && secure[0] == '1' && secure[1] == 0) f |= GOALLOC_SECURE_MODE;
  if (!s) return f;
  if (has_word(s, "stats", "1")) f |= GOALLOC_DEBUG_STATS;
  if (has_word(s, "badfree", "warn")) f |= GOALLOC_DEBUG_BADFREE_WARN;
  if (has_word(s, "check", "1")) f |= GOALLOC_DEBUG_CHECK;
  if (has_word(s, "scavenger", "0")) f |= GOALLOC_DEBUG_NO_SCAVENGER;
  if (has_word(s, "fixedheap", "1")) f |= GOALLOC_DEBUG_FIXED_HEAP;
  return f;
}

int goalloc_debug_fixed_heap(void) {
  if (environ != 0) return (goalloc_debug_flags_from_env() & GOALLOC_DEBUG_FIXED_HEAP) != 0;
  char buf[1024];  // before libc has set environ up: the environment the kernel gave the process
  return goalloc_proc_environ_value("GOALLOC_DEBUG", buf, sizeof buf) && has_word(buf, "fixedheap", "1");
}

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
