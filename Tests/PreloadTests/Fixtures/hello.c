// Compiled by gcc running under libgoalloc.so; prints a fixed line and a computed one.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  unsigned long sum = 0;
  for (int i = 1; i <= 1000; i++) {
    char *p = malloc((size_t)i);
    memset(p, i & 0xff, (size_t)i);
    sum += (unsigned char)p[i - 1];
    free(p);
  }
  printf("hello from gcc\n");
  printf("sum %lu\n", sum);
  return 0;
}
