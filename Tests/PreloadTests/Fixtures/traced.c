/* traced.c: a known sequence of allocations for the observability tests (ObservabilityTests).
 *
 * Makes exactly N_OBJS allocations of distinctive sizes (no libc routine asks for these), frees
 * N_FREED of them, keeps the rest live to the end, and prints what it did:
 *   obj <i> <size> <address>      for each allocation, in order
 *   free <i> <address>            for each free, in order
 *   live <count> <bytes>          its own objects still live at exit
 * One allocation is made with calloc and one from a second thread, so both paths are traced.
 * Exit status 0; with an argument "exit=N" it exits with status N (exit-status tests). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OBJS 12
#define N_FREED 5

static const size_t sizes[N_OBJS] = {
  1111, 2223, 3335, 4447, 5559, 7771, 9997, 13131, 21213, 30303, 70001, 123457,
};
/* Freed, in this order (indices into sizes). */
static const int freed[N_FREED] = { 3, 0, 8, 10, 5 };

static void *objs[N_OBJS];

static void *thread_alloc(void *arg) {
  size_t i = (size_t)arg;
  objs[i] = malloc(sizes[i]);
  return 0;
}

int main(int argc, char **argv) {
  int status = 0;
  if (argc > 1 && strncmp(argv[1], "exit=", 5) == 0) status = atoi(argv[1] + 5);
  /* Settle stdio's own buffer before the interesting part. */
  printf("traced: %d objects, %d freed\n", N_OBJS, N_FREED);
  fflush(stdout);

  for (size_t i = 0; i < N_OBJS; i++) {
    if (i == 4) {
      objs[i] = calloc(1, sizes[i]);
    } else if (i == 6) {
      pthread_t t;
      if (pthread_create(&t, 0, thread_alloc, (void *)i) != 0) return 99;
      pthread_join(t, 0);
    } else {
      objs[i] = malloc(sizes[i]);
    }
    if (!objs[i]) return 98;
    memset(objs[i], (int)i, sizes[i]);
  }
  for (size_t i = 0; i < N_OBJS; i++) printf("obj %zu %zu %p\n", i, sizes[i], objs[i]);
  size_t live = N_OBJS, bytes = 0;
  for (size_t i = 0; i < N_OBJS; i++) bytes += sizes[i];
  for (int k = 0; k < N_FREED; k++) {
    int i = freed[k];
    printf("free %d %p\n", i, objs[i]);
    free(objs[i]);
    objs[i] = 0;
    live--;
    bytes -= sizes[i];
  }
  printf("live %zu %zu\n", live, bytes);
  return status;
}
