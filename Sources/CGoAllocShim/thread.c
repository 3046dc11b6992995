// Threads and the process's end (goalloc_thread.h): the pthread key whose destructor flushes an
// exiting thread's cache, the fork handlers, detached background threads (the scavenger), and
// the library destructor that runs the exit hook (GOALLOC_DEBUG=stats=1 printing).
#include "goalloc_thread.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>

static pthread_key_t thread_key;
static int thread_key_state;  // 0 none, 1 creating, 2 ready, 3 failed

int goalloc_thread_key_init(void (*destructor)(void *)) {
  int expected = 0;
  if (__atomic_compare_exchange_n(&thread_key_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    int ok = pthread_key_create(&thread_key, destructor) == 0;
    __atomic_store_n(&thread_key_state, ok ? 2 : 3, __ATOMIC_RELEASE);
  }
  while (__atomic_load_n(&thread_key_state, __ATOMIC_ACQUIRE) == 1) sched_yield();
  return __atomic_load_n(&thread_key_state, __ATOMIC_ACQUIRE) == 2;
}

void goalloc_thread_key_set(void *cache) {
  if (__atomic_load_n(&thread_key_state, __ATOMIC_ACQUIRE) == 2) pthread_setspecific(thread_key, cache);
}

static int atfork_registered;
void goalloc_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  int expected = 0;
  if (__atomic_compare_exchange_n(&atfork_registered, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    pthread_atfork(prepare, parent, child);
}

int goalloc_start_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  pthread_attr_t attr;
  int saved = errno;
  if (pthread_attr_init(&attr) != 0) return 0;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int ok = pthread_create(&t, &attr, fn, arg) == 0;
  pthread_attr_destroy(&attr);
  errno = saved;
  return ok;
}

static void (*exit_hook)(void);
void goalloc_set_exit_hook(void (*hook)(void)) { __atomic_store_n(&exit_hook, hook, __ATOMIC_RELEASE); }

__attribute__((destructor)) static void goalloc_shim_fini(void) {
  void (*hook)(void) = __atomic_load_n(&exit_hook, __ATOMIC_ACQUIRE);
  if (hook) hook();
}
