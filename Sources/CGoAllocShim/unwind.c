// Unwind tables for the allocator's Swift code (goalloc_unwind.h).
//
// A DWARF unwinder (libgcc's _Unwind_Backtrace) stops at the first frame whose code has no
// entry in .eh_frame, and Swift emits none for its functions: all are `nounwind`, and swiftc has
// no -funwind-tables. Every function of the library keeps a frame pointer (SwiftPM compiles the
// Swift and C code with -fno-omit-frame-pointer), so at each call site inside it the frame is
// described by one rule: CFA = fp + 16, the return address at CFA - 8, the caller's fp at
// CFA - 16. At load, the library reads its own .eh_frame_hdr (the C code's entries), finds the
// ranges of its text no entry covers (the Swift code), and registers one synthetic entry per
// range with that rule (__register_frame_info). Ranges with an entry keep theirs, so C frames,
// and an exception thrown through operator new, unwind exactly as the compiler described them.
// libgcc sorts a registered table on its first lookup, with malloc: that lookup is made here,
// at load, so later unwinds allocate nothing.
#define _GNU_SOURCE
#include "goalloc_unwind.h"
#include "goalloc_os.h"
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <link.h>
#include <stddef.h>
#include <string.h>

void __register_frame_info(const void *begin, void *object);
struct goalloc_eh_bases { void *tbase, *dbase, *func; };
const void *_Unwind_Find_FDE(void *pc, struct goalloc_eh_bases *bases);

static uintptr_t self_start, self_end;
static const unsigned char *self_eh_hdr;
static void *libgcc_object[16];  // libgcc's `struct object` (6 words in GCC 12..14)

void goalloc_unwind_self_range(uintptr_t *start, uintptr_t *end) {
  *start = self_start;
  *end = self_end;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t me = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
  const unsigned char *hdr = 0;
  int mine = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      if (me >= a && me < a + ph->p_memsz) mine = 1;
      if (a < lo) lo = a;
      if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    if (ph->p_type == PT_GNU_EH_FRAME) hdr = (const unsigned char *)a;
  }
  if (!mine) return 0;
  self_start = lo;
  self_end = hi;
  self_eh_hdr = hdr;
  return 1;
}

static int32_t s32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }
static uint32_t u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t uleb(const unsigned char **p) {
  uint64_t v = 0; int shift = 0;
  while (**p & 0x80) { v |= (uint64_t)(**p & 0x7f) << shift; shift += 7; (*p)++; }
  v |= (uint64_t)**p << shift; (*p)++;
  return v;
}
/// Bytes of a pointer in DWARF encoding `enc` (0: not supported here).
static int enc_size(unsigned enc) {
  switch (enc & 0x0f) {
  case 0x00: return sizeof(void *);
  case 0x02: case 0x0a: return 2;
  case 0x03: case 0x0b: return 4;
  case 0x04: case 0x0c: return 8;
  default: return 0;
  }
}

/// The encoding of pc_begin / pc_range in the FDEs of the CIE at `cie` (-1: not understood).
static int cie_fde_encoding(const unsigned char *cie) {
  const unsigned char *p = cie + 8;  // length, CIE id
  unsigned version = *p++;
  const char *aug = (const char *)p;
  p += strlen(aug) + 1;
  if (version >= 4) p += 2;          // address size, segment selector size
  (void)uleb(&p);                    // code alignment
  (void)uleb(&p);                    // data alignment (sleb: skipping reads the same bytes)
  if (version == 1) p++; else (void)uleb(&p);  // return address register
  if (aug[0] != 'z') return 0x00;    // no augmentation data: absolute pointers
  (void)uleb(&p);                    // augmentation data length
  for (const char *a = aug + 1; *a; a++) {
    if (*a == 'R') return *p;
    if (*a == 'L') { p++; continue; }
    if (*a == 'P') { unsigned e = *p++; int n = enc_size(e); if (!n) return -1; p += n; continue; }
    if (*a == 'S' || *a == 'B') continue;
    return -1;
  }
  return 0x00;
}

static uint64_t read_enc(const unsigned char *p, unsigned enc) {
  switch (enc & 0x0f) {
  case 0x00: case 0x04: case 0x0c: { uint64_t v; memcpy(&v, p, 8); return v; }
  case 0x02: { uint16_t v; memcpy(&v, p, 2); return v; }
  case 0x0a: { int16_t v; memcpy(&v, p, 2); return (uint64_t)(int64_t)v; }
  case 0x03: return u32(p);
  default: return (uint64_t)(int64_t)s32(p);
  }
}

// The frame-pointer rule as a CIE: version 1, "zR" (FDE pointers absolute, 8 bytes), code
// alignment 1, data alignment -8, then DW_CFA_def_cfa fp 16, DW_CFA_offset ra 1 (CFA - 8),
// DW_CFA_offset fp 2 (CFA - 16). DWARF register numbers: x86-64 rbp 6, ra 16; arm64 x29, x30.
#if defined(__x86_64__)
#define FP_REG 6
#define RA_REG 16
#elif defined(__aarch64__)
#define FP_REG 29
#define RA_REG 30
#endif

#ifdef FP_REG
static size_t put_cie(unsigned char *b) {
  static const unsigned char body[] = {
    0, 0, 0, 0,                 // CIE id
    1, 'z', 'R', 0,             // version, augmentation
    1, 0x78, RA_REG,            // code alignment 1, data alignment -8, return address column
    1, 0x00,                    // augmentation data: FDE pointer encoding DW_EH_PE_absptr
    0x0c, FP_REG, 16,           // DW_CFA_def_cfa fp, 16
    0x80 | RA_REG, 1,           // DW_CFA_offset ra, 1 * -8
    0x80 | FP_REG, 2,           // DW_CFA_offset fp, 2 * -8
    0, 0, 0, 0,                 // DW_CFA_nop padding to 8 bytes
  };
  uint32_t len = sizeof body;
  memcpy(b, &len, 4);
  memcpy(b + 4, body, sizeof body);
  return 4 + sizeof body;
}

static size_t put_fde(unsigned char *b, size_t at, uint64_t begin, uint64_t range) {
  uint32_t len = 28, cie = (uint32_t)(at + 4);  // back to the CIE at offset 0
  uint64_t v[2] = { begin, range };
  memcpy(b + at, &len, 4);
  memcpy(b + at + 4, &cie, 4);
  memcpy(b + at + 8, v, 16);
  memset(b + at + 24, 0, 8);  // augmentation data length 0, DW_CFA_nop padding
  return at + 32;
}
#endif

int goalloc_unwind_register_self(void) {
#ifndef FP_REG
  return 0;
#else
  static int done;
  if (done) return 0;
  done = 1;
  dl_iterate_phdr(find_self, (void *)(uintptr_t)goalloc_unwind_register_self);
  const unsigned char *hdr = self_eh_hdr;
  // .eh_frame_hdr: version 1, then the encodings of eh_frame_ptr, fde_count and the table;
  // the usual ones are pcrel|sdata4, udata4 and datarel|sdata4 (relative to the header).
  if (!self_start || !hdr || hdr[0] != 1 || hdr[2] != 0x03 || hdr[3] != 0x3b || enc_size(hdr[1]) != 4) return 0;
  uint32_t count = u32(hdr + 8);
  const unsigned char *table = hdr + 12;
  size_t cap = 64 + 32 * ((size_t)count + 2);
  unsigned char *buf = goalloc_sys_map(cap);
  if (!buf) return 0;
  size_t at = put_cie(buf);
  uintptr_t cur = self_start;
  int gaps = 0;
  const unsigned char *last_cie = 0;
  int fde_enc = 0;
  for (uint32_t i = 0; i <= count; i++) {
    uintptr_t begin = self_end, end = self_end;
    if (i < count) {
      begin = (uintptr_t)(hdr + s32(table + 8 * i));
      const unsigned char *fde = hdr + s32(table + 8 * i + 4);
      if (u32(fde) == 0xffffffffu) return 0;  // 64-bit DWARF: not produced for this code
      const unsigned char *cie = fde + 4 - u32(fde + 4);
      if (cie != last_cie) { last_cie = cie; fde_enc = cie_fde_encoding(cie); }
      int n = fde_enc < 0 ? 0 : enc_size((unsigned)fde_enc);
      if (!n) return 0;
      end = begin + (uintptr_t)read_enc(fde + 8 + n, (unsigned)fde_enc & 0x0f);
    }
    if (begin > cur && begin <= self_end) {
      at = put_fde(buf, at, cur, begin - cur);
      gaps++;
    }
    if (end > cur) cur = end;
  }
  memset(buf + at, 0, 4);  // terminator
  if (!gaps) return 0;
  __register_frame_info(buf, libgcc_object);
  // libgcc sorts a registered table on first use (with malloc): do it now.
  struct goalloc_eh_bases bases;
  (void)_Unwind_Find_FDE((void *)(self_end - 1), &bases);
  return gaps;
#endif
}

// The unwind lock (goalloc_unwind.h): a spin lock with its holder's thread id.
static long unwind_owner;  // 0: free

int goalloc_unwind_lock(void) {
  long me = syscall(SYS_gettid);
  if (__atomic_load_n(&unwind_owner, __ATOMIC_RELAXED) == me) return 0;
  long expected = 0;
  while (!__atomic_compare_exchange_n(&unwind_owner, &expected, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    expected = 0;
    sched_yield();
  }
  return 1;
}
void goalloc_unwind_unlock(void) { __atomic_store_n(&unwind_owner, 0, __ATOMIC_RELEASE); }
void goalloc_unwind_fork_prepare(void) { (void)goalloc_unwind_lock(); }
void goalloc_unwind_fork_parent(void) { goalloc_unwind_unlock(); }
void goalloc_unwind_fork_child(void) { __atomic_store_n(&unwind_owner, 0, __ATOMIC_RELEASE); }
