// One invalid free per run, chosen by argv[1]:
//   double    free(p) twice (p: 64 bytes)
//   stack     free() of a stack address
//   interior  free(p + 8) of a 64-byte block
//   realloc   realloc() of a pointer already freed
// Prints "addr 0x..." (the pointer handed to the bad call) before it, and "after" after it, so
// a test can tell whether the process went on and which address the diagnostic must name.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Keeps the compiler from reasoning about the pointers (no -Wfree-nonheap-object folding).
static void *volatile launder_slot;
static void *launder(void *p) { launder_slot = p; return launder_slot; }

static void announce(const void *p) {
  printf("addr %p\n", p);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: badfree double|stack|interior|realloc\n");
    return 2;
  }
  const char *mode = argv[1];
  // Some live objects around the bad one, so the heap is not trivially empty.
  void *keep[16];
  for (int i = 0; i < 16; i++) keep[i] = malloc(64);
  if (strcmp(mode, "double") == 0) {
    char *p = malloc(64);
    memset(p, 1, 64);
    free(p);
    announce(p);
    free(launder(p));
  } else if (strcmp(mode, "stack") == 0) {
    char buf[64];
    memset(buf, 2, sizeof buf);
    char *p = launder(buf);
    announce(p);
    free(p);
  } else if (strcmp(mode, "interior") == 0) {
    char *p = malloc(64);
    memset(p, 3, 64);
    char *q = (char *)launder(p) + 8;
    announce(q);
    free(q);
  } else if (strcmp(mode, "realloc") == 0) {
    char *p = malloc(64);
    memset(p, 4, 64);
    free(p);
    announce(p);
    void *q = realloc(launder(p), 128);
    (void)q;  // whatever it is, it must not be used
  } else {
    fprintf(stderr, "badfree: unknown mode %s\n", mode);
    return 2;
  }
  printf("after\n");
  fflush(stdout);
  for (int i = 0; i < 16; i++) free(keep[i]);
  return 0;
}
