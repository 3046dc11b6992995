/* hardening.c: what an attacker with a linear overflow or a write after free can do to the
 * allocator's metadata in freed objects. Each scenario runs in the process it is started in:
 *
 *   hardening overflow    8-byte overflow from a live block into a freed neighbour's first word
 *   hardening uaf         write after free: a freed object's first word -> a live block
 *   hardening bytes       each of the 255 one-byte changes of a freed object's first word, in a
 *                         child each; prints how many were detected (abort with the message)
 *   hardening exitflush   a thread's list poisoned, then the thread exits (its list is flushed)
 *   hardening listflush   a poisoned object deep in a full list (a flush walks it)
 *   hardening remote      objects of another thread's spans, poisoned after that thread freed them
 *                         (they went back to their spans, not onto its list: nothing to steer)
 *   hardening word1       stray writes to word 1 of freed objects: ignored; later double frees
 *                         are still caught; nothing leaks
 *   hardening fuzz N      N children, each writing random bytes into freed objects while it
 *                         churns; every malloc result is checked: never a live block (aliased)
 *                         and always ours (malloc_usable_size) and writable
 *
 * A scenario that ends by "heap corruption detected" aborts (the test expects it); "ALIASED" or
 * "FOREIGN" on stdout means the allocator handed out memory it should not have. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#define SIZE 48
#define N 64

static void *volatile sink;

/* The scenarios write to and free memory after free on purpose; the compiler may drop such
 * accesses (they are undefined behaviour), so they go through volatile pointers. */
static void poke64(void *p, uint64_t v) { *(volatile uint64_t *)p = v; }
static uint64_t peek64(void *p) { return *(volatile uint64_t *)p; }
static void poke8(void *p, char v) { *(volatile char *)p = v; }
static void *launder(void *p) { void *volatile q = p; return q; }

/* Runs body(arg) in a child whose stderr is captured; returns 'D' (aborted after "heap
 * corruption detected"), 'C' (exited 0), 'B' (exited 1: aliased or foreign) or 'O' (other). */
static char in_child(int (*body)(unsigned), unsigned arg) {
  int fds[2];
  if (pipe(fds) != 0) return 'O';
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    _exit(body(arg));
  }
  close(fds[1]);
  char buf[4096];
  size_t n = 0;
  ssize_t k;
  while ((k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
  buf[n] = 0;
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, "goalloc: heap corruption detected: ")) return 'D';
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 'C';
  if (WIFEXITED(st) && WEXITSTATUS(st) == 1) return 'B';
  return 'O';
}

/* Two adjacent 48 B blocks (b right after a) among n fresh ones; the others stay live. */
static void adjacent(void **blocks, int n, char **a, char **b) {
  for (int i = 0; i < n; i++) blocks[i] = malloc(SIZE);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if ((char *)blocks[j] == (char *)blocks[i] + SIZE) { *a = blocks[i]; *b = blocks[j]; return; }
  puts("no adjacent blocks");
  exit(3);
}

/* After the corruption: the next mallocs of the class must not hand out `target` (live). */
static void take_two(void *target) {
  for (int i = 0; i < 2; i++) {
    void *p = malloc(SIZE);
    if (p == target) { puts("ALIASED"); fflush(stdout); exit(1); }
    sink = p;
  }
  puts("not steered");
}

static void overflow(void) {
  void *blocks[N]; char *a, *b;
  adjacent(blocks, N, &a, &b);
  void *target = blocks[N - 1] == a || blocks[N - 1] == b ? blocks[0] : blocks[N - 1];
  free(b);
  poke64(a + SIZE, (uintptr_t)target); /* one word past a's end: b's first word */
  take_two(target);
}

static void uaf(void) {
  void *target = malloc(SIZE);
  char *b = malloc(SIZE);
  free(b);
  poke64(b, (uintptr_t)target);
  take_two(target);
}

static int one_byte(unsigned v) {
  void *live[8];
  for (int i = 0; i < 8; i++) live[i] = malloc(SIZE);
  char *b = malloc(SIZE), *c = malloc(SIZE);
  free(c);
  free(b); /* b's first word links to c */
  poke8(b, (char)(*(volatile char *)b ^ (char)v));
  for (int i = 0; i < 3; i++) {
    void *p = malloc(SIZE);
    for (int k = 0; k < 8; k++) if (p == live[k]) return 1;
    memset(p, 0x5a, SIZE);
  }
  return 0;
}

static void bytes(void) {
  int count[4] = {0};
  for (unsigned v = 1; v < 256; v++) {
    char r = in_child(one_byte, v);
    count[r == 'D' ? 0 : r == 'C' ? 1 : r == 'B' ? 2 : 3]++;
  }
  printf("bytes: detected=%d undetected=%d aliased=%d other=%d\n", count[0], count[1], count[2], count[3]);
}

static void *target_of_thread;
static void *poison_and_exit(void *arg) {
  (void)arg;
  char *x[16];
  for (int i = 0; i < 16; i++) x[i] = malloc(SIZE);
  for (int i = 0; i < 16; i++) free(x[i]); /* all on this thread's list */
  poke64(x[7], (uintptr_t)target_of_thread); /* write after free, deep in the list */
  return NULL;         /* the exit flush walks the list */
}

static void exitflush(void) {
  target_of_thread = malloc(SIZE);
  memset(target_of_thread, 0x11, SIZE);
  pthread_t th;
  pthread_create(&th, NULL, poison_and_exit, NULL);
  pthread_join(th, NULL);
  /* Without the checks the flush freed target_of_thread (live): it would come back here. */
  for (int i = 0; i < 4096; i++) {
    void *p = malloc(SIZE);
    if (p == target_of_thread) { puts("ALIASED"); return; }
  }
  puts("not steered");
}

static void listflush(void) {
  void *target = malloc(SIZE);
  enum { M = 2000 };
  static char *x[M];
  for (int i = 0; i < M; i++) x[i] = malloc(SIZE);
  for (int i = 0; i < 100; i++) free(x[i]);
  poke64(x[3], (uintptr_t)target);            /* early: deep in the list when it fills */
  for (int i = 100; i < M; i++) free(x[i]);   /* the list fills: a flush walks past x[3] */
  for (int i = 0; i < 4096; i++) {
    void *p = malloc(SIZE);
    if (p == target) { puts("ALIASED"); return; }
  }
  puts("not steered");
}

static char *remote_blocks[32];
static void *remote_free(void *arg) {
  (void)arg;
  free(launder(malloc(SIZE)));                          /* this thread gets a cache */
  for (int i = 0; i < 32; i++) free(remote_blocks[i]); /* back to the owner's span */
  poke64(remote_blocks[20], (uintptr_t)remote_blocks); /* a foreign address: the program's globals */
  for (int i = 0; i < 64; i++) {                        /* this thread's mallocs of the class */
    void *p = malloc(SIZE);
    if ((char *)p == (char *)remote_blocks) { puts("FOREIGN"); return NULL; }
    sink = p;
  }
  return NULL;
}

static void remote(void) {
  for (int i = 0; i < 32; i++) remote_blocks[i] = malloc(SIZE);
  pthread_t th;
  pthread_create(&th, NULL, remote_free, NULL);
  pthread_join(th, NULL);
  for (int i = 0; i < 64; i++) {                        /* and the owner's */
    void *p = malloc(SIZE);
    if ((char *)p == (char *)remote_blocks) { puts("FOREIGN"); return; }
  }
  puts("not steered");
}

static void word1(void) {
  /* Stray writes at offset 8 of freed objects: zero, all ones, and a value from another freed
   * object (what a program copying stale data would write). */
  char *x[300];
  for (int i = 0; i < 300; i++) x[i] = malloc(SIZE);
  free(x[0]);
  uint64_t stale = peek64(x[0] + 8);
  for (int i = 1; i < 300; i++) {
    free(x[i]);
    poke64(x[i] + 8, i % 3 == 0 ? 0 : i % 3 == 1 ? ~(uint64_t)0 : stale);
  }
  /* Churn the class across threads: no crash, and every block handed out once. */
  for (int round = 0; round < 50; round++) {
    char *y[300];
    for (int i = 0; i < 300; i++) { y[i] = malloc(SIZE); memset(y[i], round, SIZE); }
    for (int i = 0; i < 300; i++)
      for (int j = i + 1; j < 300; j += 37) if (y[i] == y[j]) { puts("ALIASED"); return; }
    for (int i = 0; i < 300; i++) free(y[i]);
  }
  struct mallinfo2 mi = mallinfo2();
  (void)mi;
  /* Double-free detection still works for later blocks. */
  char *d = malloc(SIZE);
  free(d);
  puts("word1 ok; now a double free");
  fflush(stdout);
  free(launder(d)); /* must abort with "double free detected" */
  puts("double free NOT detected");
}

/* One child of the fuzz: random frees, corruption of freed objects, checked mallocs. */
static int fuzz_child(unsigned seed) {
  enum { SLOTS = 512 };
  static char *live[SLOTS];
  static size_t sizes[SLOTS];
  static char *freed[SLOTS];
  int nfreed = 0;
  srand(seed);
  for (int step = 0; step < 20000; step++) {
    int i = rand() % SLOTS;
    if (live[i]) {
      if (nfreed < SLOTS) freed[nfreed++] = live[i];
      free(launder(live[i]));
      live[i] = NULL;
    } else {
      size_t n = 16 + (size_t)(rand() % 480);
      char *p = malloc(n);
      if (!p) return 2;
      for (int k = 0; k < SLOTS; k++) if (live[k] == p) { printf("ALIASED %p\n", (void *)p); fflush(stdout); return 1; }
      /* Ours: usable size at least n (a foreign pointer is reported by the allocator: 'O'). */
      if (malloc_usable_size(p) < n) { printf("FOREIGN %p\n", (void *)p); fflush(stdout); return 1; }
      memset(p, (int)step, n);
      live[i] = p;
      sizes[i] = n;
      /* A freed object that was handed out again is live now: no longer a corruption target. */
      for (int k = 0; k < nfreed; k++) if (freed[k] == p) { freed[k] = freed[--nfreed]; break; }
    }
    if (nfreed > 0 && rand() % 64 == 0) { /* write after free: random bytes in the first 16 */
      char *f = freed[rand() % nfreed];
      int off = rand() % 16, len = 1 + rand() % 8;
      if (off + len > 16) len = 16 - off;
      for (int k = 0; k < len; k++) poke8(f + off + k, (char)rand());
    }
  }
  (void)sizes;
  return 0;
}

static void fuzz(int children) {
  int count[4] = {0};
  for (int c = 0; c < children; c++) {
    char r = in_child(fuzz_child, 0x1234u + (unsigned)c * 7919u);
    count[r == 'D' ? 0 : r == 'C' ? 1 : r == 'B' ? 2 : 3]++;
  }
  printf("fuzz: children=%d detected=%d clean=%d aliased_or_foreign=%d other=%d\n", children, count[0], count[1],
         count[2], count[3]);
}

/* GOALLOC_SECURE=1: a freed block is not handed out again at once; neighbouring allocations are
 * not in address order; writing one byte past a large block (or past a span of small ones)
 * faults at once. */
static void secure(void) {
  int reused = 0;
  for (int i = 0; i < 1000; i++) {
    void *p = malloc(SIZE);
    free(launder(p));
    void *q = malloc(SIZE);
    if (q == p) reused++;
    sink = q;
  }
  int ascending = 0;
  char *prev = malloc(SIZE);
  for (int i = 0; i < 200; i++) {
    char *p = malloc(SIZE);
    if (p == prev + SIZE) ascending++;
    prev = p;
  }
  printf("secure: reused=%d ascending=%d of 200\n", reused, ascending);
  size_t n = 100000;
  char *big = malloc(n);
  size_t usable = malloc_usable_size(big);
  memset(big, 1, usable);
  printf("secure: writing past a large block of %zu usable bytes\n", usable);
  poke8(big + usable, 1); /* the guard page */
  puts("secure: NOT faulted");
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *s = argc > 1 ? argv[1] : "";
  if (!strcmp(s, "overflow")) overflow();
  else if (!strcmp(s, "uaf")) uaf();
  else if (!strcmp(s, "bytes")) bytes();
  else if (!strcmp(s, "exitflush")) exitflush();
  else if (!strcmp(s, "listflush")) listflush();
  else if (!strcmp(s, "remote")) remote();
  else if (!strcmp(s, "word1")) word1();
  else if (!strcmp(s, "fuzz")) fuzz(argc > 2 ? atoi(argv[2]) : 50);
  else if (!strcmp(s, "secure")) secure();
  else { fprintf(stderr, "usage: hardening overflow|uaf|bytes|exitflush|listflush|remote|word1|fuzz [N]|secure\n"); return 2; }
  return 0;
}
