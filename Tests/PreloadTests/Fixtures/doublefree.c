/* doublefree.c: frees one block twice (SettingsAndStatsTests: `goalloc stats` explains the SIGABRT
 * that follows). Prints "freed once" before the second free. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  char *volatile p = malloc(100);
  p[0] = 1;
  free(p);
  printf("freed once\n");
  fflush(stdout);
  free(p);
  printf("not reached\n");
  return 0;
}
