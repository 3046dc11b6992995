/* addrspace.c: a program's address space under the allocator (AddressSpaceTests).
 *   base      prints "allocator A", "early P environ S" (a malloc(64) from .preinit_array, before
 *             libc has set environ up: S is NULL or set), "first P" (a malloc(64) in main) and
 *             "vmsize N" (KiB)
 *   fill      mallocs 1 MiB blocks until NULL: "fill N of M MiB" (M: RLIMIT_AS in MiB)
 *   memalign  "memalign P before B after A freed F": VmSize (KiB) before memalign(1 << 32, 1),
 *             after it, and after its free */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

extern char **environ;
static void *early;
static int early_environ;
static void preinit(int argc, char **argv, char **envp) {
  (void)argc; (void)argv; (void)envp;
  early_environ = environ != 0;
  early = malloc(64);
}
__attribute__((section(".preinit_array"), used)) static void (*preinit_entry)(int, char **, char **) = preinit;

static long vmsize_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && fgets(line, sizeof line, f)) if (!strncmp(line, "VmSize:", 7)) v = atol(line + 7);
  if (f) fclose(f);
  return v;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "base";
  void *first = malloc(64);
  if (!strcmp(mode, "base")) {
    printf("allocator %s\nearly %p environ %s\nfirst %p\nvmsize %ld\n",
           dlsym(RTLD_DEFAULT, "goalloc_check_heap") ? "goalloc" : "system", early,
           early_environ ? "set" : "NULL", first, vmsize_kib());
  } else if (!strcmp(mode, "fill")) {
    struct rlimit r;
    getrlimit(RLIMIT_AS, &r);
    long n = 0;
    while (malloc(1 << 20)) n++;
    printf("fill %ld of %ld MiB\n", n, (long)(r.rlim_cur >> 20));
  } else if (!strcmp(mode, "memalign")) {
    long before = vmsize_kib();
    void *p = memalign(1ul << 32, 1);
    long after = vmsize_kib();
    if (!p || ((unsigned long)p & ((1ul << 32) - 1))) { printf("memalign returned %p\n", p); return 1; }
    *(char *)p = 1;
    free(p);
    printf("memalign %p before %ld after %ld freed %ld\n", p, before, after, vmsize_kib());
  }
  free(first);
  return 0;
}
