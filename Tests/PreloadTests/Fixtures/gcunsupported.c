// Calls a bdwgc function GoAlloc does not implement (unreachable finalizers): under
// libgoalloc.so it must abort with one line naming the call.
#include <gc.h>
#include <stdio.h>
static void fin(void *obj, void *cd) { (void)obj; (void)cd; }
int main(void) {
  GC_INIT();
  void *p = GC_MALLOC(32);
  printf("before\n");
  fflush(stdout);
  GC_register_finalizer_unreachable(p, fin, NULL, NULL, NULL);
  printf("after\n");
  return 0;
}
