// fork() while other threads allocate. 4 threads malloc/free in a loop; the main thread forks
// 50 times. Each child frees objects the parent allocated before the fork, allocates and frees a
// few thousand objects (some children from a second thread), checks every pattern and _exit(0)s.
// The parent waits for each child with a deadline (a deadlocked child is killed and counted as
// a failure) and checks its exit status: 0 is success, 3 a corrupted object, 4 a heap that
// goalloc_check_heap() found inconsistent in the child. alarm() bounds the whole run, so a deadlock in the
// parent ends it with SIGALRM instead of hanging. Prints "fork: ok ..." and exits 0 on success.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { WORKERS = 4, FORKS = 50, CHILD_OPS = 3000, INHERITED = 64, CHILD_DEADLINE_MS = 20000 };

static volatile int stop;
static long worker_errors, worker_ops;

static uint64_t next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return *s = x;
}

static unsigned char pat(const void *p, size_t i) { return (unsigned char)(((uintptr_t)p >> 4) ^ (i * 7)); }

static void fill(unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = pat(p, i);
}

static int intact(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pat(p, i)) return 0;
  return 1;
}

static size_t random_size(uint64_t *s) {
  uint64_t r = next(s);
  switch (r % 16) {
    case 0: return 32769 + (r >> 8) % 200000;  // large
    case 1: case 2: case 3: return 1025 + (r >> 8) % 31000;
    default: return 1 + (r >> 8) % 1024;
  }
}

// Allocate/free `ops` times through 64 slots; returns the number of corrupted objects.
static long churn(uint64_t seed, int ops) {
  unsigned char *p[64] = {0};
  size_t n[64] = {0};
  long bad = 0;
  for (int op = 0; op < ops; op++) {
    int k = (int)(next(&seed) % 64);
    if (p[k]) {
      if (!intact(p[k], n[k])) bad++;
      free(p[k]);
      p[k] = NULL;
    } else {
      n[k] = random_size(&seed);
      p[k] = malloc(n[k]);
      if (!p[k]) { bad++; continue; }
      fill(p[k], n[k]);
    }
  }
  for (int k = 0; k < 64; k++) {
    if (p[k]) {
      if (!intact(p[k], n[k])) bad++;
      free(p[k]);
    }
  }
  return bad;
}

static void *worker(void *arg) {
  uint64_t seed = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
  while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
    long bad = churn(next(&seed), 500);
    __atomic_add_fetch(&worker_errors, bad, __ATOMIC_RELAXED);
    __atomic_add_fetch(&worker_ops, 500, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void *child_thread(void *arg) {
  long bad = churn((uintptr_t)arg * 31 + 7, CHILD_OPS);
  return (void *)(intptr_t)bad;
}

static void run_child(int index, unsigned char **inherited, size_t *sizes) {
  alarm(CHILD_DEADLINE_MS / 1000);  // a deadlocked child dies of SIGALRM
  long bad = 0;
  for (int i = 0; i < INHERITED; i++) {  // the parent's objects: still intact, freeable here
    if (!intact(inherited[i], sizes[i])) bad++;
    free(inherited[i]);
  }
  pthread_t t;
  int threaded = index % 5 == 0 && pthread_create(&t, NULL, child_thread, (void *)(intptr_t)index) == 0;
  bad += churn(0xD1B54A32D192ED03ull + (uint64_t)index, CHILD_OPS);
  if (threaded) {
    void *r;
    pthread_join(t, &r);
    bad += (long)(intptr_t)r;
  }
  if (bad) _exit(3);
  int (*check_heap)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "goalloc_check_heap");
  if (check_heap && !check_heap()) _exit(4);
  _exit(0);
}

static long ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(void) {
  alarm(120);  // the whole run; SIGALRM kills a deadlocked parent
  pthread_t w[WORKERS];
  for (uintptr_t i = 0; i < WORKERS; i++)
    if (pthread_create(&w[i], NULL, worker, (void *)i) != 0) { fprintf(stderr, "fork: pthread_create failed\n"); return 2; }

  int failures = 0, heap_check_failures = 0;
  for (int f = 0; f < FORKS; f++) {
    unsigned char *inherited[INHERITED];
    size_t sizes[INHERITED];
    for (int i = 0; i < INHERITED; i++) {
      sizes[i] = (size_t)(16 + (i * 977 + f * 131) % (i % 8 == 0 ? 100000 : 2000));
      inherited[i] = malloc(sizes[i]);
      if (!inherited[i]) { fprintf(stderr, "fork: malloc failed\n"); return 2; }
      fill(inherited[i], sizes[i]);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) run_child(f, inherited, sizes);
    for (int i = 0; i < INHERITED; i++) {  // the parent's copies are unaffected by the child
      if (!intact(inherited[i], sizes[i])) { failures++; fprintf(stderr, "fork: parent object corrupted\n"); }
      free(inherited[i]);
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
      if (ms_since(&t0) > CHILD_DEADLINE_MS) {
        fprintf(stderr, "fork: child %d (pid %d) timed out (deadlock?)\n", f, (int)pid);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        failures++;
        r = -2;
        break;
      }
      usleep(1000);
    }
    if (r == -1) { perror("waitpid"); failures++; continue; }
    if (r == -2) continue;
    if (WIFSIGNALED(status)) {
      fprintf(stderr, "fork: child %d killed by signal %d\n", f, WTERMSIG(status));
      failures++;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork: child %d exited with status %d\n", f, WEXITSTATUS(status));
      failures++;
      if (WEXITSTATUS(status) == 4) heap_check_failures++;
    }
  }

  __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < WORKERS; i++) pthread_join(w[i], NULL);
  if (worker_errors) { fprintf(stderr, "fork: %ld corrupted objects in workers\n", worker_errors); failures++; }
  printf("fork: %s children=%d workers=%d failures=%d heap_check_failures=%d\n", failures == 0 ? "ok" : "FAILED",
         FORKS, WORKERS, failures, heap_check_failures);
  return failures == 0 ? 0 : 1;
}
