// Readers of this process's /proc files (proc.c), with no allocation and errno left alone.
#ifndef GOALLOC_PROC_H
#define GOALLOC_PROC_H

#include <stddef.h>
#include <stdint.h>
#include "goalloc_output.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown.
uint64_t goalloc_rss_bytes(void);
/// 1 when the calling thread (not the main one) is the process's last live thread: the main
/// thread ended with pthread_exit and every other thread is gone. A background thread of ours
/// must then end too, or the process never exits.
int goalloc_only_live_thread(void);
/// 1 when the main thread ended with pthread_exit (it stays a zombie while other threads live):
/// the GC's parked mark workers then end, so they do not keep the process alive.
int goalloc_main_thread_exited(void);
/// Appends "# map <start> <end> <file offset> <path>" lines for the executable mappings of this
/// process (from /proc/self/maps), so pcs in a trace or profile can be symbolized offline.
void goalloc_write_maps(int fd);
/// Copies the value of environment variable `name` as the process started with it (from
/// /proc/self/environ: usable before libc has set `environ` up) into buf. 1 if present.
int goalloc_proc_environ_value(const char *name, char *buf, size_t len);
/// Appends "pid <pid> (<command line>)" to t: the program by its last path component, then its
/// arguments, cut at 96 characters (or the kernel's command name when there is no command line).
void goalloc_text_process(struct goalloc_text *t);

#ifdef __cplusplus
}
#endif
#endif
