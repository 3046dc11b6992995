// Built with -fno-pie -no-pie: taking free's and malloc's addresses in non-PIC code gives them
// canonical PLT entries in the executable (as gcc's cc1 does). The preloaded allocator's
// functions must interpose cleanly: no loader warning, and one address per function whether it
// is taken here or looked up with dlsym.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

void (*volatile release)(void *);
void *(*volatile acquire)(size_t);

int main(void) {
  release = free;
  acquire = malloc;
  void *p = acquire(100);
  release(p);
  printf("free %s\n", (void *)release == dlsym(RTLD_DEFAULT, "free") ? "same" : "different");
  printf("malloc %s\n", (void *)acquire == dlsym(RTLD_DEFAULT, "malloc") ? "same" : "different");
  printf("done\n");
  return 0;
}
