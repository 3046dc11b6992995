/* Pool Get/Put pairs on one thread: N iterations of goalloc_pool_get + write + goalloc_pool_put
 * of objects of SIZE bytes (GoAlloc's pools, Go's sync.Pool; goalloc bench compares it with
 * the pair workload's malloc/free of the same size and with Go's sync.Pool, gowork pool).
 * Usage: pool [iterations] [size]. Prints ns per Get/Put pair. The pool functions are found at
 * run time (dlsym): under an allocator without them the workload fails with a message.
 * Written for GoAlloc's benchmark suite. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void *(*create_fn)(size_t, void (*)(void *, void *), void *);
typedef void *(*get_fn)(void *);
typedef void (*put_fn)(void *, void *);

static void init_object(void *obj, void *arg) { (void)arg; *(char *)obj = 0; }

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 50000000;
  size_t size = argc > 2 ? (size_t)atol(argv[2]) : 64;
  create_fn create = (create_fn)dlsym(RTLD_DEFAULT, "goalloc_pool_create");
  get_fn get = (get_fn)dlsym(RTLD_DEFAULT, "goalloc_pool_get");
  put_fn put = (put_fn)dlsym(RTLD_DEFAULT, "goalloc_pool_put");
  if (!create || !get || !put) {
    fprintf(stderr, "WORKLOAD FAILED: goalloc_pool_* not found (run it under libgoalloc.so)\n");
    return 3;
  }
  void *pool = create(size, init_object, NULL);
  if (pool == NULL) { fprintf(stderr, "WORKLOAD FAILED: goalloc_pool_create returned NULL\n"); return 3; }
  void *volatile sink;
  struct timespec a, b;
  for (long i = 0; i < 1000; i++) { char *p = get(pool); sink = p; put(pool, p); }
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    char *p = get(pool);
    if (p == NULL) { fprintf(stderr, "WORKLOAD FAILED: goalloc_pool_get returned NULL\n"); return 3; }
    p[0] = (char)i;
    sink = p;
    put(pool, p);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
  printf("pool: ops=%ld %.2f ns per Get/Put pair of %zu B\n", n, ns, size);
  (void)sink;
  return 0;
}
