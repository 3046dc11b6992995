// HeapAddress: where the heap lives in the address space, for every heap of the process: the
// window's base (random per process, or Go's 0x00c000000000 with GOALLOC_DEBUG=fixedheap=1), the
// cursor the heap grows from, and the flat page -> span table of the window, mapped as the heap
// reaches it. See Malloc.swift for an overview of the allocator.
//
//   [W - 64 MiB, W)    the flat span table: one 8 B entry per 8 KiB page of the window
//                      [W, W + 64 GiB), mapped from its start as far as the heap has come
//                      (64 KiB per 64 MiB arena; goalloc_span_lookup reads it)
//   [W, B)             never mapped: the heap starts at B = W + a random number of pages
//   [B, cursor)        heap memory, mapped in steps as the heap grows (MHeap.grow); contiguous,
//                      unless something else sits at the cursor (the heap then skips ahead)
//   [W + 64 GiB, ...)  spans of alignments above 64 MiB, each mapped exactly at its alignment
//
// W is 64 MiB-aligned and random in [1 TiB, 64 TiB), below the executable, the brk heap and the
// mmap area of x86-64 and 48-bit arm64 processes (about 20 bits); B adds a random page offset
// below 64 MiB (13 bits), so the first object's address has about 33 random bits (glibc's mmap
// base has 28). The bits come from goalloc_random64 (seeded by getrandom). The choice is made once,
// when the first heap is created, which may be the process's first malloc, before libc has set
// `environ` up: goalloc_debug_fixed_heap then reads /proc/self/environ.
//
// Nothing is reserved ahead of use: address space counts against RLIMIT_AS (`ulimit -v`) whether
// it is mapped PROT_NONE or not, so the table and the heap are mapped only as far as they are used.
// When the kernel refuses a step, the caller asks again for exactly what it needs.
//
// Invariants: W, B and the table's address never change once chosen; the published window only
// grows, over table pages already mapped (an arena it reaches late keeps the table it was given,
// whose entries the flat table then lacks: lookups there fall back to the arena index); both
// cursors only grow; a 64 MiB arena region holds the memory of one heap only (tests create
// several heaps, and the index entries of window arenas point into the one shared table).
// `heapAddressSpace.lock` guards it all; callers may hold a heap lock, never the reverse.
import CGoAllocShim

/// Where a random window may start: [1 TiB, 64 TiB).
let randomWindowLow: UInt = 1 << 40
let randomWindowHigh: UInt = 64 << 40
/// The window of a ThreadSanitizer build: 256 GiB, inside the sanitizer's low program memory.
let tsanHeapBase: UInt = 256 << 30
let spanWindowBytes = Int(GOALLOC_SPAN_WINDOW)
/// Bytes of the flat table for the whole window: 8 B per page (64 MiB).
let spanTableBytes = spanWindowBytes / pageSize * MemoryLayout<UInt>.stride
/// Bytes of the flat table per arena (64 KiB): the table grows by whole arenas.
let spanTableArenaBytes = pagesPerArena * MemoryLayout<UInt>.stride
/// The heap grows in steps of at least this much (one page-allocator chunk), at most an arena.
let heapGrowMinBytes = 1 << logChunkBytes

/// The process's heap address space (one per process, shared by every MHeap).
struct HeapAddressSpace {
  var _first: UInt64 = 0       // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0
  var chosen = false
  var fixed = false
  var window: UInt = 0         // W
  var table: UInt = 0          // the flat table: W - 64 MiB
  var tableBytes = 0           // mapped from `table` (0: no table: lookups use the arena index)
  var tableStuck = false       // the table could not grow in place: the window stays as it is
  var cursor: UInt = 0         // where the heap grows next
  var owner: UInt = 0          // the heap whose memory ends at `cursor`
  var hugeCursor: UInt = 0     // where spans of huge alignments go (above the window)
}

nonisolated(unsafe) var heapAddressSpace = HeapAddressSpace()

/// Chooses the process's heap address, once (MHeap.create): Go's hint with
/// GOALLOC_DEBUG=fixedheap=1, else a random window and page offset; maps the table's first arena.
func chooseHeapAddress() {
  lockAcquire(&heapAddressSpace.lock)
  chooseHeapAddressLocked()
  lockRelease(&heapAddressSpace.lock)
}

private func chooseHeapAddressLocked() {
  if heapAddressSpace.chosen { return }
  heapAddressSpace.chosen = true
  // Under ThreadSanitizer (the Swift-mode tests in CI) only [4 KiB, 512 GiB) of the low
  // addresses is program memory (the rest is its shadow): such a build uses a fixed window at
  // 256 GiB instead of a random one or Go's 768 GiB.
  let tsan = goalloc_built_with_tsan() != 0
  let fixed = goalloc_debug_fixed_heap() != 0 || tsan
  heapAddressSpace.fixed = fixed
  var w: UInt = 0
  for _ in 0..<(fixed ? 1 : 8) {  // another random window while the table's place is taken
    w = tsan ? tsanHeapBase : fixed ? UInt(GOALLOC_FIXED_HEAP_BASE) : randomWindowBase(goalloc_random64())
    var busy: Int32 = 0
    let t = w - UInt(spanTableBytes)
    if goalloc_sys_map_at(UnsafeMutableRawPointer(bitPattern: t), spanTableArenaBytes, 1, &busy) != nil {
      heapAddressSpace.table = t
      heapAddressSpace.tableBytes = spanTableArenaBytes
      break
    }
    if busy == 0 { break }  // refused, not taken: no window (every lookup uses the arena index)
  }
  let offset = fixed ? 0 : randomPageOffset(goalloc_random64())
  heapAddressSpace.window = w
  heapAddressSpace.cursor = w + offset
  heapAddressSpace.hugeCursor = w + UInt(spanWindowBytes)
  if heapAddressSpace.tableBytes > 0 { publishWindowLocked() }
}

/// The window's base for random bits `r`: 64 MiB-aligned in [low + 64 MiB, high - 64 GiB - 64 MiB),
/// so the table below it and the window above it stay in [low, high).
func randomWindowBase(_ r: UInt64) -> UInt {
  let slots = (randomWindowHigh - randomWindowLow - UInt(spanWindowBytes) - 2 * UInt(heapArenaBytes))
    >> UInt(logHeapArenaBytes)
  return randomWindowLow + UInt(heapArenaBytes) + (UInt(truncatingIfNeeded: r) % slots) << UInt(logHeapArenaBytes)
}

/// The heap's offset above the window's base for random bits `r`: whole pages, below 64 MiB.
func randomPageOffset(_ r: UInt64) -> UInt {
  (UInt(truncatingIfNeeded: r >> 7) % UInt(pagesPerArena)) << UInt(pageShift)
}

private func publishWindowLocked() {
  goalloc_span_window_publish(heapAddressSpace.window,
                              UnsafeMutablePointer(bitPattern: heapAddressSpace.table),
                              UInt(heapAddressSpace.tableBytes / MemoryLayout<UInt>.stride * pageSize))
}

/// Maps `bytes` of fresh heap memory for heap `owner`, at a multiple of `align` (a power of two,
/// at least a page): at the cursor, else further on when something else is in the way, else
/// wherever the kernel puts it. `huge`: a span of an alignment above an arena, mapped above the
/// window. Nil when the kernel refuses the memory (out of memory or address space).
func reserveHeap(_ bytes: Int, align: Int, huge: Bool, owner: UInt) -> UInt? {
  if bytes <= 0 || bytes > 1 << (heapAddrBits - 1) || align > 1 << (heapAddrBits - 2) { return nil }
  let limit = UInt(1) << UInt(heapAddrBits)
  lockAcquire(&heapAddressSpace.lock)
  chooseHeapAddressLocked()
  var at: UInt
  if huge {
    at = roundUp(heapAddressSpace.hugeCursor, UInt(align))
  } else {
    if heapAddressSpace.owner != owner && heapAddressSpace.owner != 0 {  // an arena holds one heap's memory
      heapAddressSpace.cursor = roundUp(heapAddressSpace.cursor, UInt(heapArenaBytes))
    }
    at = roundUp(heapAddressSpace.cursor, UInt(align))
  }
  var skip = UInt(heapArenaBytes)
  for _ in 0..<16 {
    if at >= limit || UInt(bytes) > limit - at { break }
    var busy: Int32 = 0
    if goalloc_sys_map_at(UnsafeMutableRawPointer(bitPattern: at), bytes, 0, &busy) != nil {
      if huge {
        heapAddressSpace.hugeCursor = at + UInt(bytes)
      } else {
        heapAddressSpace.cursor = at + UInt(bytes)
        heapAddressSpace.owner = owner
        growTableLocked(to: at + UInt(bytes))
      }
      lockRelease(&heapAddressSpace.lock)
      return at
    }
    if busy == 0 {  // refused, not taken: another address would not help
      lockRelease(&heapAddressSpace.lock)
      return nil
    }
    at = roundUp(at + skip, UInt(max(align, heapArenaBytes)))
    skip <<= 1
  }
  lockRelease(&heapAddressSpace.lock)
  return mapAnywhere(bytes, align: align)
}

/// `bytes` at a multiple of `align` wherever the kernel has room (over-mapped, the rest trimmed).
private func mapAnywhere(_ bytes: Int, align: Int) -> UInt? {
  let extra = align > 4096 ? align : 0  // the kernel aligns to its own page
  guard let m = goalloc_sys_map_heap(bytes + extra) else { return nil }
  let raw = UInt(bitPattern: m)
  let base = roundUp(raw, UInt(align))
  if base > raw { goalloc_sys_unmap(m, Int(base - raw)) }
  let tail = raw + UInt(bytes + extra) - (base + UInt(bytes))
  if tail > 0 { goalloc_sys_unmap(UnsafeMutableRawPointer(bitPattern: base + UInt(bytes)), Int(tail)) }
  return base
}

/// Extends the flat table to cover the window up to `end` (whole arenas; the table at least
/// doubles, up to its full 64 MiB, so it grows in few steps), and publishes the larger window.
private func growTableLocked(to end: UInt) {
  let w = heapAddressSpace.window
  if heapAddressSpace.tableBytes == 0 || heapAddressSpace.tableStuck || end <= w { return }
  let reach = min(end - w, UInt(spanWindowBytes))
  let need = roundUp(Int(reach >> UInt(pageShift)) * MemoryLayout<UInt>.stride, spanTableArenaBytes)
  let have = heapAddressSpace.tableBytes
  if need <= have { return }
  var want = min(spanTableBytes, max(need, 2 * have))
  while true {  // the doubled size, else just what is needed
    var busy: Int32 = 0
    let at = UnsafeMutableRawPointer(bitPattern: heapAddressSpace.table + UInt(have))
    if goalloc_sys_map_at(at, want - have, 1, &busy) != nil {
      heapAddressSpace.tableBytes = want
      publishWindowLocked()
      return
    }
    if busy != 0 { heapAddressSpace.tableStuck = true }  // something else is there: for good
    if busy != 0 || want == need { return }  // arenas past the window get tables of their own
    want = need
  }
}

/// The window's slice of the flat table for the arena at `arenaBase`, if the window covers it.
func windowSpans(_ arenaBase: UInt) -> UnsafeMutableRawPointer? {
  lockAcquire(&heapAddressSpace.lock)
  defer { lockRelease(&heapAddressSpace.lock) }
  let off = arenaBase &- heapAddressSpace.window
  if off >= UInt(heapAddressSpace.tableBytes / MemoryLayout<UInt>.stride * pageSize) { return nil }
  return UnsafeMutableRawPointer(bitPattern: heapAddressSpace.table + (off >> UInt(pageShift)) * 8)
}
