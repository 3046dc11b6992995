// The allocator's settings from the environment (goalloc_env.h): GOALLOC_DEBUG's keys, all in
// one table (`settings` below: a new key is one line there), and GOALLOC_MEMLIMIT.
//
// The first reader that finds the environment checks it once per process: an unknown key, a bad
// value, a file that cannot be written or a bad GOALLOC_MEMLIMIT each get one warning line on
// stderr naming the setting, and that setting keeps its default. Items are read left to right; a
// key given twice takes its last good value. getenv does not allocate; `environ` is checked
// first because the first mallocs may come before libc has set it up. Nothing here allocates
// (no strerror: it may).
#include "goalloc_env.h"
#include "goalloc_output.h"
#include "goalloc_proc.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

enum kind {
  KIND_BOOL,      // 0 or 1; 1 sets `flag`
  KIND_BOOL_OFF,  // 0 or 1; 0 sets `flag` (scavenger=0)
  KIND_BADFREE,   // abort or warn; warn sets `flag`
  KIND_FILE,      // a file to write ("1", "stderr" or "-": standard error; %p: the process id)
  KIND_COUNT,     // a whole number > 0
  KIND_CHOICE,    // one of the words in `choices`
};

struct setting {
  const char *key;
  enum kind kind;
  uint32_t flag;
  const char *fallback;  // what a rejected value falls back to, for the warning
  const char *const *choices;  // KIND_CHOICE: the words it takes (NULL-terminated; the default is in `fallback`)
};

static const char *const gcsweep_choices[] = {"lazy", "eager", "ondemand", 0};
static const char *const gcdirty_choices[] = {"auto", "uffd", "softdirty", "full", "barrier", "mprotect", 0};

/// Every GOALLOC_DEBUG key (README.md, "Settings", documents each).
static const struct setting settings[] = {
  {"stats", KIND_BOOL, GOALLOC_DEBUG_STATS, "stats=0"},
  {"badfree", KIND_BADFREE, GOALLOC_DEBUG_BADFREE_WARN, "badfree=abort"},
  {"check", KIND_BOOL, GOALLOC_DEBUG_CHECK, "check=0"},
  {"scavenger", KIND_BOOL_OFF, GOALLOC_DEBUG_NO_SCAVENGER, "scavenger=1"},
  {"fixedheap", KIND_BOOL, GOALLOC_DEBUG_FIXED_HEAP, "fixedheap=0"},
  {"allocfreetrace", KIND_FILE, 0, "no trace"},
  {"tracestack", KIND_BOOL, 0, "tracestack=0"},
  {"memprofile", KIND_FILE, 0, "no heap profile"},
  {"memprofilerate", KIND_COUNT, 0, "memprofilerate=524288"},
  {"heapmap", KIND_FILE, 0, "no heap map"},
  {"gctrace", KIND_BOOL, GOALLOC_DEBUG_GCTRACE, "gctrace=0"},
  {"gclog", KIND_FILE, 0, "no GC log"},
  {"gcsweep", KIND_CHOICE, 0, "gcsweep=lazy", gcsweep_choices},
  {"gcobjqueue", KIND_BOOL, GOALLOC_DEBUG_GC_OBJQUEUE, "gcobjqueue=0"},
  {"cleanupcheck", KIND_BOOL, GOALLOC_DEBUG_CLEANUP_CHECK, "cleanupcheck=0"},
  {"gcconc", KIND_BOOL, GOALLOC_DEBUG_GC_CONC, "gcconc=0"},
  {"gccheckmark", KIND_BOOL, GOALLOC_DEBUG_GC_CHECKMARK, "gccheckmark=0"},
  {"gcconcbroken", KIND_BOOL, GOALLOC_DEBUG_GC_CONC_BROKEN, "gcconcbroken=0"},
  {"gcdirty", KIND_CHOICE, 0, "gcdirty=auto", gcdirty_choices},
  {"gcpreclean", KIND_BOOL, GOALLOC_DEBUG_GC_PRECLEAN, "gcpreclean=0"},
};
enum { SETTING_COUNT = sizeof settings / sizeof settings[0] };

// 0: not checked yet; 1: being checked; 2: checked. `rejected` has bit i set when the value of
// settings[i] was refused (goalloc_debug_value then does not report it); `memlimit_bad` likewise.
static int checked;
static uint32_t rejected;
static int memlimit_bad;

static const struct setting *find(const char *key, size_t len, int *index) {
  for (int i = 0; i < SETTING_COUNT; i++) {
    if (strlen(settings[i].key) == len && strncmp(settings[i].key, key, len) == 0) {
      if (index) *index = i;
      return &settings[i];
    }
  }
  return 0;
}

static int equals(const char *s, size_t n, const char *word) { return strlen(word) == n && strncmp(s, word, n) == 0; }

// MARK: warnings (one line, one write)

struct line { char buf[512]; size_t n; };
static void put(struct line *l, const char *s, size_t n) {
  while (n-- > 0 && *s && l->n < sizeof l->buf - 2) l->buf[l->n++] = *s++;
}
static void puts0(struct line *l, const char *s) { put(l, s, strlen(s)); }
static void emit(struct line *l) {
  l->buf[l->n++] = '\n';
  goalloc_write_len(2, l->buf, l->n);
}

/// "goalloc: GOALLOC_DEBUG: <item>: <why>; using the default (<fallback>)"
static void warn_item(const char *item, size_t n, const char *why, const char *fallback) {
  struct line l = {.n = 0};
  puts0(&l, "goalloc: GOALLOC_DEBUG: ");
  put(&l, item, n);
  puts0(&l, ": ");
  puts0(&l, why);
  if (fallback) { puts0(&l, "; using the default ("); puts0(&l, fallback); puts0(&l, ")"); }
  else puts0(&l, "; ignored");
  emit(&l);
}

static void warn_unknown(const char *item, size_t n) {
  struct line l = {.n = 0};
  puts0(&l, "goalloc: GOALLOC_DEBUG: ");
  put(&l, item, n);
  puts0(&l, ": unknown setting (known: ");
  for (int i = 0; i < SETTING_COUNT; i++) { if (i) puts0(&l, ", "); puts0(&l, settings[i].key); }
  puts0(&l, "); ignored");
  emit(&l);
}

static const char *describe_errno(int e) {
  switch (e) {
    case ENOENT: return "no such folder";
    case EACCES: case EPERM: return "permission denied";
    case EROFS: return "read-only file system";
    case EISDIR: return "it is a folder";
    case ENOTDIR: return "a part of the path is not a folder";
    case ENAMETOOLONG: return "name too long";
    default: return "cannot write there";
  }
}

// MARK: values

/// Whether `v` (length n) is a good value for `s`; for files, the reason it is not in *why.
static int valid(const struct setting *s, const char *v, size_t n, const char **why) {
  switch (s->kind) {
    case KIND_BOOL: case KIND_BOOL_OFF:
      *why = "expected 0 or 1";
      return equals(v, n, "0") || equals(v, n, "1");
    case KIND_BADFREE:
      *why = "expected abort or warn";
      return equals(v, n, "abort") || equals(v, n, "warn");
    case KIND_CHOICE:
      *why = s->choices == gcsweep_choices ? "expected lazy, eager or ondemand" : "expected auto, uffd, softdirty, mprotect or full";
      for (const char *const *c = s->choices; *c; c++) if (equals(v, n, *c)) return 1;
      return 0;
    case KIND_COUNT: {
      *why = "expected a whole number of bytes above 0";
      if (n == 0 || n > 18) return 0;
      uint64_t x = 0;
      for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return 0;
        x = x * 10 + (uint64_t)(v[i] - '0');
      }
      return x > 0;
    }
    case KIND_FILE: {
      *why = "expected a file name";
      if (n == 0) return 0;
      char path[4096];
      if (n >= sizeof path) { *why = "file name too long"; return 0; }
      memcpy(path, v, n);
      path[n] = 0;
      int e = goalloc_output_check(path);
      if (e == 0) return 1;
      static char reason[96];  // only the checking thread writes it, before the warning
      size_t k = 0;
      const char *a = "cannot write the file: ", *b = describe_errno(e);
      while (*a && k < sizeof reason - 1) reason[k++] = *a++;
      while (*b && k < sizeof reason - 1) reason[k++] = *b++;
      reason[k] = 0;
      *why = reason;
      return 0;
    }
  }
  return 0;
}

/// The flags GOALLOC_DEBUG sets; with `check`, warns about every bad item and records which
/// settings were refused.
static uint32_t parse(const char *s, int check, uint32_t *refused) {
  uint32_t f = 0;
  while (s && *s) {
    const char *end = strchr(s, ',');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    const char *eq = memchr(s, '=', len);
    int index = -1;
    const struct setting *st = len == 0 ? 0 : find(s, eq ? (size_t)(eq - s) : len, &index);
    if (len == 0) {
      // an empty item (",,"): nothing
    } else if (!st) {
      if (check) warn_unknown(s, len);
    } else if (!eq) {
      if (check) warn_item(s, len, "expected key=value", st->fallback);
      if (refused) *refused |= 1u << index;
    } else {
      const char *v = eq + 1;
      size_t vl = len - (size_t)(v - s);
      const char *why = "";
      // Files are checked once (they touch the file system); flags are parsed every time.
      int ok = st->kind == KIND_FILE && !check ? 1 : valid(st, v, vl, &why);
      if (!ok) {
        if (check) warn_item(s, len, why, st->fallback);
        if (refused) *refused |= 1u << index;
      } else {
        if (refused) *refused &= ~(1u << index);
        if (st->flag) {
          int on = st->kind == KIND_BOOL ? equals(v, vl, "1")
                 : st->kind == KIND_BOOL_OFF ? equals(v, vl, "0")
                 : equals(v, vl, "warn");
          if (on) f |= st->flag; else f &= ~st->flag;
        }
      }
    }
    s = end ? end + 1 : 0;
  }
  return f;
}

static int parse_memlimit(const char *s, uint64_t *out);

/// Checks GOALLOC_DEBUG and GOALLOC_MEMLIMIT once per process (environment readable).
static void check_once(void) {
  int expected = 0;
  if (!__atomic_compare_exchange_n(&checked, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return;
  int saved = errno;
  uint32_t refused = 0;
  const char *s = getenv("GOALLOC_DEBUG");
  if (s) parse(s, 1, &refused);
  __atomic_store_n(&rejected, refused, __ATOMIC_RELEASE);
  const char *m = getenv("GOALLOC_MEMLIMIT");
  uint64_t v;
  if (m && *m && !parse_memlimit(m, &v)) {
    struct line l = {.n = 0};
    puts0(&l, "goalloc: GOALLOC_MEMLIMIT=");
    puts0(&l, m);
    puts0(&l, ": expected bytes, or a number with a unit (B, KiB, MiB, GiB, TiB; e.g. 512MiB); "
              "using the default (no limit)");
    emit(&l);
    __atomic_store_n(&memlimit_bad, 1, __ATOMIC_RELEASE);
  }
  const char *secure = getenv("GOALLOC_SECURE");
  if (secure && strcmp(secure, "0") != 0 && strcmp(secure, "1") != 0) {
    struct line l = {.n = 0};
    puts0(&l, "goalloc: GOALLOC_SECURE=");
    puts0(&l, secure);
    puts0(&l, ": expected 0 or 1; using the default (0)");
    emit(&l);
  }
  __atomic_store_n(&checked, 2, __ATOMIC_RELEASE);
  errno = saved;
}

uint32_t goalloc_debug_flags_from_env(void) {
  if (environ == 0) return 0;
  check_once();
  uint32_t f = GOALLOC_DEBUG_PARSED | parse(getenv("GOALLOC_DEBUG"), 0, 0);
  const char *secure = getenv("GOALLOC_SECURE");
  if (secure && strcmp(secure, "1") == 0) f |= GOALLOC_SECURE_MODE;
  return f;
}

int goalloc_debug_fixed_heap(void) {
  if (environ != 0) return (goalloc_debug_flags_from_env() & GOALLOC_DEBUG_FIXED_HEAP) != 0;
  char buf[1024];  // before libc has set environ up: the environment the kernel gave the process
  return goalloc_proc_environ_value("GOALLOC_DEBUG", buf, sizeof buf)
    && (parse(buf, 0, 0) & GOALLOC_DEBUG_FIXED_HEAP) != 0;
}

int goalloc_debug_gcsweep(void) {
  char buf[16];
  if (!goalloc_debug_value("gcsweep", buf, sizeof buf)) return 0;
  for (int i = 0; gcsweep_choices[i]; i++) if (strcmp(buf, gcsweep_choices[i]) == 0) return i;
  return 0;
}

int goalloc_debug_gcdirty(void) {
  char buf[16];
  if (!goalloc_debug_value("gcdirty", buf, sizeof buf)) return 0;
  for (int i = 0; gcdirty_choices[i]; i++) if (strcmp(buf, gcdirty_choices[i]) == 0) return i;
  return 0;
}

int goalloc_debug_value(const char *key, char *buf, size_t len) {
  if (environ == 0 || len == 0) return 0;
  check_once();
  int index = -1;
  if (!find(key, strlen(key), &index)) return 0;
  if (__atomic_load_n(&rejected, __ATOMIC_ACQUIRE) & (1u << index)) return 0;
  const char *s = getenv("GOALLOC_DEBUG");
  size_t kl = strlen(key);
  int found = 0;
  while (s && *s) {  // the last occurrence wins
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    if (n > kl && strncmp(s, key, kl) == 0 && s[kl] == '=') {
      size_t vl = n - kl - 1;
      if (vl >= len) vl = len - 1;
      memcpy(buf, s + kl + 1, vl);
      buf[vl] = 0;
      found = 1;
    }
    s = end ? end + 1 : 0;
  }
  return found;
}

void goalloc_warn_output(const char *key, const char *path, int err) {
  int index = -1;
  const struct setting *st = find(key, strlen(key), &index);
  struct line l = {.n = 0};
  puts0(&l, "goalloc: GOALLOC_DEBUG: ");
  puts0(&l, key);
  puts0(&l, "=");
  puts0(&l, path);
  puts0(&l, ": cannot write the file: ");
  puts0(&l, describe_errno(err));
  if (st) { puts0(&l, "; using the default ("); puts0(&l, st->fallback); puts0(&l, ")"); }
  emit(&l);
}

/// "512MiB", "1g", "1048576": a number and an optional unit (B, K/KB/KiB, M..., G..., T...,
/// letters in either case). 1 when well formed and within 64 bits.
static int parse_memlimit(const char *s, uint64_t *out) {
  uint64_t v = 0;
  int digits = 0;
  while (*s >= '0' && *s <= '9') {
    uint64_t d = (uint64_t)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
    s++; digits++;
  }
  if (digits == 0) return 0;
  int shift = 0;
  switch (*s) {
    case 'K': case 'k': shift = 10; s++; break;
    case 'M': case 'm': shift = 20; s++; break;
    case 'G': case 'g': shift = 30; s++; break;
    case 'T': case 't': shift = 40; s++; break;
    default: break;
  }
  if (shift && *s == 'i') s++;
  if (*s == 'B' || *s == 'b') s++;
  if (*s != 0) return 0;
  if (shift && v > (UINT64_MAX >> shift)) return 0;
  *out = v << shift;
  return 1;
}

uint64_t goalloc_memlimit_from_env(void) {
  if (environ == 0) return 0;
  check_once();
  if (__atomic_load_n(&memlimit_bad, __ATOMIC_ACQUIRE)) return 0;
  const char *s = getenv("GOALLOC_MEMLIMIT");
  uint64_t v = 0;
  if (!s || !*s || !parse_memlimit(s, &v)) return 0;
  return v;
}

int goalloc_built_with_tsan(void) {
  /* Defined here, not inline in the header: this file is compiled with the sanitizer's flags
     (swift test --sanitize=thread), while a header's inline code is compiled into Swift without. */
#if defined(__SANITIZE_THREAD__)
  return 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return 1;
#else
  return 0;
#endif
#else
  return 0;
#endif
}
