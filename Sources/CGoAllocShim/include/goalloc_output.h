// Output without stdio or malloc (output.c): whole writes to a file descriptor, numbers, the
// one-line bad-pointer report, the stats descriptor, and the files GOALLOC_DEBUG names.
#ifndef GOALLOC_OUTPUT_H
#define GOALLOC_OUTPUT_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void goalloc_write(int fd, const char *s);
void goalloc_write_len(int fd, const char *s, size_t n);
void goalloc_write_u64(int fd, uint64_t v);
void goalloc_write_hex(int fd, uint64_t v);
/// "goalloc: <op>(): <what>: 0x<addr>\n" on fd 2.
void goalloc_report(const char *op, const char *what, uintptr_t addr);
/* "goalloc: heap corruption detected: <what> 0x<addr>" on stderr (the caller aborts). */
void goalloc_report_corruption(const char *what, uintptr_t addr);
/// A private duplicate of stderr taken at load time (programs may close fd 2 before exit);
/// falls back to 2.
int goalloc_stats_fd(void);
void goalloc_stats_fd_init(void);
/// "1", "stderr" or "-" -> 2; otherwise the file (with "%p" replaced by the process id), created
/// or truncated. -1 on failure.
int goalloc_open_output(const char *path);
void goalloc_close_output(int fd);

#ifdef __cplusplus
}
#endif
#endif
