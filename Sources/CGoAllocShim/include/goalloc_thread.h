// Threads and the process's end (thread.c): the thread-exit key that flushes a thread's cache,
// fork handlers, detached background threads, and the hook run when the library is unloaded or
// the process exits.
#ifndef GOALLOC_THREAD_H
#define GOALLOC_THREAD_H

#ifdef __cplusplus
extern "C" {
#endif

/// Creates the thread-exit key once; `destructor` runs with the thread's cache at exit.
int goalloc_thread_key_init(void (*destructor)(void *));
/// Associates `cache` with the calling thread so the destructor runs at its exit.
void goalloc_thread_key_set(void *cache);
/// Registers fork handlers once (prepare takes every allocator lock; parent/child release them).
void goalloc_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
/// Starts a detached thread running fn(arg). Returns 1 on success.
int goalloc_start_thread(void *(*fn)(void *), void *arg);
/// Called from a destructor when the library is unloaded or the process exits (stats printing).
void goalloc_set_exit_hook(void (*hook)(void));

#ifdef __cplusplus
}
#endif
#endif
