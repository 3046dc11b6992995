// Readers of this process's /proc files (goalloc_proc.h): resident size (statm), whether the
// calling thread is the last one alive (stat), the executable mappings (maps) for offline
// symbolization, the initial environment (environ), and the process's name for its stats
// (cmdline, comm). Stack buffers only; errno is left alone.
#define _GNU_SOURCE
#include "goalloc_proc.h"
#include "goalloc_output.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

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

int goalloc_main_thread_exited(void) {
  char buf[512];
  if (!read_proc("/proc/self/stat", buf, sizeof buf)) return 0;
  const char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
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

int goalloc_proc_environ_value(const char *name, char *buf, size_t len) {
  int saved = errno;
  int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || len == 0) { if (fd >= 0) close(fd); errno = saved; return 0; }
  /* NUL-separated NAME=value entries, read in blocks; `at` is the position within the entry. */
  size_t nl = strlen(name), at = 0, out = 0;
  int state = 0;  /* 0: matching the name, 1: copying the value, 2: skipping to the next entry */
  int found = 0;
  char block[512];
  ssize_t n;
  while (!found && (n = read(fd, block, sizeof block)) > 0) {
    for (ssize_t i = 0; i < n && !found; i++) {
      char ch = block[i];
      if (ch == 0) {
        if (state == 1) found = 1;
        state = 0; at = 0;
        continue;
      }
      if (state == 0) {
        if (at < nl && ch == name[at]) at++;
        else if (at == nl && ch == '=') state = 1;
        else state = 2;
      } else if (state == 1 && out + 1 < len) {
        buf[out++] = ch;
      }
    }
  }
  if (state == 1) found = 1;  /* the last entry without its NUL */
  close(fd);
  errno = saved;
  buf[out] = 0;
  return found;
}

void goalloc_text_process(struct goalloc_text *t) {
  char digits[24]; int i = 24; long pid = (long)getpid();
  do { digits[--i] = (char)('0' + pid % 10); pid /= 10; } while (pid);
  goalloc_text_str(t, "pid ");
  goalloc_text_put(t, digits + i, (size_t)(24 - i));
  goalloc_text_str(t, " (");
  /* The command line, arguments separated by spaces, the program by its last path component;
     else the kernel's command name. */
  char buf[512];
  size_t n = 0;
  int saved = errno;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    close(fd);
  }
  errno = saved;
  while (n > 0 && buf[n - 1] == 0) n--;
  const char *start = buf;
  if (n == 0) {
    if (read_proc("/proc/self/comm", buf, sizeof buf)) {
      n = strlen(buf);
      while (n > 0 && buf[n - 1] == '\n') n--;
    }
  } else {
    size_t first = strnlen(buf, n);
    for (size_t k = 0; k < first; k++) if (buf[k] == '/') start = buf + k + 1;
  }
  const size_t limit = 96;
  size_t len = (size_t)(buf + n - start), shown = len > limit ? limit : len;
  for (size_t k = 0; k < shown; k++) {
    char c = start[k];
    if (c == 0) c = ' ';
    else if ((unsigned char)c < 0x20 || c == 0x7f) c = '?';
    goalloc_text_put(t, &c, 1);
  }
  if (shown < len || n == sizeof buf - 1) goalloc_text_str(t, "...");
  if (n == 0) goalloc_text_str(t, "?");
  goalloc_text_str(t, ")");
}
