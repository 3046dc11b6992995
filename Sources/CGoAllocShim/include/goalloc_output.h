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

/// One collection's GOALLOC_DEBUG=gctrace=1 line (README, "gctrace"), fields in its order.
struct goalloc_gctrace {
  uint64_t cycle;         // 1 for the first collection
  uint64_t since_ns;      // since the GC mode started
  uint64_t percent;       // pause time so far / time since the GC mode started, in percent
  uint64_t clock_ns[3];   // stop + sweep termination, mark, flip + restart
  uint64_t cpu_ns;        // CPU time in the pause: the collecting thread and the mark helpers
  uint64_t heap_start, heap_end, heap_marked, goal, stacks, globals;  // bytes
  uint64_t procs;         // threads stopped, and the collector
  int forced;             // goalloc_gc_collect (GC_gcollect)
  const char *conc;       // concurrent mark: the dirty-page mechanism ("uffd", ...); NULL: stopped
  uint64_t dirty_pages;   // concurrent mark: 4 KiB pages rescanned at mark termination
  uint64_t cpu_split_ns[5]; // concurrent mark (conc set): stop 1, assists, background workers, idle workers, stop 2
};
/// Writes g's line to stderr with one write, without allocating:
///   gc 3 @0.512s 2%: 0.010+1.2+0.020 ms clock, 1.2 ms cpu, 4->4->2 MB, 5 MB goal, 0 MB stacks,
///   1 MB globals, 2 P (forced)
/// and for a concurrent cycle (the clock's three parts: stop 1, concurrent mark, stop 2) the cpu
/// is Go's split, stop 1 + assist/background/idle + stop 2 ("0.04+0.5/1.0/0+0.08 ms cpu"), and
/// before "(forced)" comes ", conc uffd 12 pages".
void goalloc_write_gctrace(const struct goalloc_gctrace *g);
/// The same line (with its newline) into out; returns its length (at most cap bytes written).
size_t goalloc_format_gctrace(const struct goalloc_gctrace *g, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
