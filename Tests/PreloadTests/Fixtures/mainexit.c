// mainexit.c: the main thread leaves with pthread_exit while another thread works (legal: the
// process lives on until its last thread ends), and also forks from that thread, whose child
// ends the same way. Enough is allocated to start GoAlloc's background scavenger; the process
// must still end when the program's threads are done, not hang on the allocator's own thread.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void churn(void) {
  void *blocks[256];
  for (int round = 0; round < 8; round++) {
    for (int i = 0; i < 256; i++) { blocks[i] = malloc(64 * 1024); memset(blocks[i], round, 64); }
    for (int i = 0; i < 256; i++) free(blocks[i]);
  }
}

static void *child_main(void *arg) {
  (void)arg;
  churn();
  return NULL;
}

static void *worker(void *arg) {
  (void)arg;
  churn();
  usleep(300 * 1000);  // the scavenger is up by now
  pid_t pid = fork();
  if (pid == 0) {  // the child: its only thread starts one more, then leaves by pthread_exit too
    pthread_t t;
    pthread_create(&t, NULL, child_main, NULL);
    pthread_detach(t);
    pthread_exit(NULL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  printf("child %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ended" : "failed");
  fflush(stdout);
  return NULL;
}

int main(void) {
  churn();
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 2;
  pthread_detach(t);
  pthread_exit(NULL);
}
