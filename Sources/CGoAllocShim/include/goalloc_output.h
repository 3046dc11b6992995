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
/// or truncated. On failure the negated errno (errno itself is left alone).
int goalloc_open_output(const char *path);
/// Whether goalloc_open_output(path) can succeed, without creating anything: 0, or the errno
/// that says why not (the file or its folder is missing, not writable, or a folder).
int goalloc_output_check(const char *path);
void goalloc_close_output(int fd);

/// A block of text built on the stack and written with one write(2), so blocks that processes
/// write to one pipe at the same moment do not interleave (a pipe keeps writes of up to
/// PIPE_BUF = 4096 bytes whole). Text beyond the buffer is dropped.
struct goalloc_text {
  size_t len;
  char bytes[4096 - sizeof(size_t)];
};
void goalloc_text_put(struct goalloc_text *t, const char *s, size_t n);
void goalloc_text_str(struct goalloc_text *t, const char *s);
void goalloc_text_u64(struct goalloc_text *t, uint64_t v);
/// Builds a block on this function's stack with `fill(block, context)`, then writes it to fd.
void goalloc_text_write_block(int fd, void (*fill)(struct goalloc_text *, void *), void *context);

#ifdef __cplusplus
}
#endif
#endif
