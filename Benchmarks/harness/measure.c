/* measure: runs one benchmark process and reports what it cost, for `goalloc bench`.
 *
 * Usage: measure REPORT TIMEOUT_S PRELOAD PROGRAM [ARGS...]
 *   PRELOAD is a library path to put in the child's LD_PRELOAD, or "-" for none (glibc malloc).
 *   Writes one line to REPORT:
 *     wall_ns=N user_us=N sys_us=N maxrss_kib=N status=exit:N | signal:N | timeout
 *
 * Why a separate small C program: Linux carries the parent's RSS high-water mark into a forked
 * child's ru_maxrss across exec. Forked from this process (about 1 MiB), the child's figure is its
 * own; forked from the Swift CLI it would not be. This process never allocates under the
 * allocator being measured: only the child gets PRELOAD.
 *
 * Peak RSS is the larger of wait4's ru_maxrss and the child's VmHWM, read from /proc when the
 * child stops at its exit (ptrace, PTRACE_O_TRACEEXIT: one stop at exec, one at exit, nothing in
 * between). ru_maxrss alone is not exact: the kernel keeps RSS in per-CPU counters and
 * getrusage reads them without folding in each CPU's last up to 31 pages per counter, so a
 * process of 1-2 MiB can read low by a hundred KiB or more (pairmix under glibc, same runs:
 * ru_maxrss 108-196 KiB below VmHWM at exit). VmHWM sums the counters exactly. Where ptrace is refused, the
 * report falls back to ru_maxrss alone. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0) kill(child, SIGKILL);
}

/* The child's VmHWM in KiB (0 when unreadable). */
static long read_hwm(pid_t pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  long kib = 0;
  while (fgets(buf, sizeof buf, f))
    if (strncmp(buf, "VmHWM:", 6) == 0) { kib = atol(buf + 6); break; }
  fclose(f);
  return kib;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: measure REPORT TIMEOUT_S PRELOAD|- PROGRAM [ARGS...]\n");
    return 2;
  }
  const char *report = argv[1], *preload = argv[3];
  unsigned timeout = (unsigned)atoi(argv[2]);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pid_t pid = fork();
  if (pid < 0) { perror("measure: fork"); return 2; }
  if (pid == 0) {
    if (strcmp(preload, "-") != 0) setenv("LD_PRELOAD", preload, 1);
    else unsetenv("LD_PRELOAD");
    ptrace(PTRACE_TRACEME, 0, 0, 0);  /* may be refused: then no stops, ru_maxrss only */
    execv(argv[4], argv + 4);
    fprintf(stderr, "measure: cannot execute %s: %s\n", argv[4], strerror(errno));
    _exit(127);
  }
  child = pid;
  signal(SIGALRM, on_alarm);
  if (timeout > 0) alarm(timeout);
  int status = 0;
  struct rusage ru;
  long hwm = 0;
  int traced = 0;
  for (;;) {
    if (wait4(pid, &status, 0, &ru) < 0) {
      if (errno == EINTR) continue;
      perror("measure: wait4");
      return 2;
    }
    if (!WIFSTOPPED(status)) break;
    int sig = WSTOPSIG(status);
    if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
      hwm = read_hwm(pid);  /* exiting: the address space is still whole */
      sig = 0;
    } else if (sig == SIGTRAP && !traced) {  /* the stop after execv */
      ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL);
      traced = 1;
      sig = 0;
    }
    ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);  /* other signals go on to the child */
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  alarm(0);
  FILE *f = fopen(report, "w");
  if (!f) { perror("measure: report"); return 2; }
  long long wall = (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
  fprintf(f, "wall_ns=%lld user_us=%lld sys_us=%lld maxrss_kib=%ld status=", wall,
          (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
          (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec,
          hwm > ru.ru_maxrss ? hwm : ru.ru_maxrss);
  if (timed_out) fprintf(f, "timeout\n");
  else if (WIFSIGNALED(status)) fprintf(f, "signal:%d\n", WTERMSIG(status));
  else fprintf(f, "exit:%d\n", WEXITSTATUS(status));
  fclose(f);
  return 0;
}
