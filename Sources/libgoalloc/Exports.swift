// libgoalloc: GoAlloc as the C allocator (LD_PRELOAD=libgoalloc.so), in Embedded Swift.
//
// Each `goalloc_<name>` below is reached from the libc name `<name>` through a one-jump C
// trampoline (Sources/CGoAllocABI: default visibility, which Swift's protected exports lack). Every entry
// point follows glibc's contract: failure is NULL with errno = ENOMEM (EINVAL for a bad
// alignment), never an abort; bad pointers are reported in one line, then abort (default) or are
// ignored and counted (GOALLOC_DEBUG=badfree=warn). Everything runs in malloc mode (16-byte
// alignment for requests of 16 B or more).
import CGoAllocShim
import GoAllocCoreEmbedded

@c public func goalloc_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
  goMalloc(size, mallocMode: true)
}

@c public func goalloc_free(_ p: UnsafeMutableRawPointer?) {
  goFree(p)
}

@c public func goalloc_calloc(_ n: Int, _ size: Int) -> UnsafeMutableRawPointer? {
  let (total, overflow) = UInt(bitPattern: n).multipliedReportingOverflow(by: UInt(bitPattern: size))
  if overflow || total > UInt(Int.max) {
    goalloc_set_errno(goalloc_errno_enomem())
    return nil
  }
  return goMalloc(Int(total), zero: true, mallocMode: true)
}

@c public func goalloc_realloc(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
  goRealloc(p, size, mallocMode: true)
}

@c public func goalloc_reallocarray(_ p: UnsafeMutableRawPointer?, _ n: Int, _ size: Int) -> UnsafeMutableRawPointer? {
  let (total, overflow) = UInt(bitPattern: n).multipliedReportingOverflow(by: UInt(bitPattern: size))
  if overflow || total > UInt(Int.max) {
    goalloc_set_errno(goalloc_errno_enomem())
    return nil
  }
  return goRealloc(p, Int(total), mallocMode: true)
}

@inline(__always) func isPowerOfTwo(_ x: Int) -> Bool { x > 0 && x & (x - 1) == 0 }

@c public func goalloc_posix_memalign(_ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                       _ alignment: Int, _ size: Int) -> Int32 {
  guard let out, isPowerOfTwo(alignment), alignment % MemoryLayout<UnsafeRawPointer>.size == 0 else {
    return goalloc_errno_einval()
  }
  guard let p = goAlignedAlloc(size, alignment: alignment, mallocMode: true) else {
    return goalloc_errno_enomem()
  }
  out.pointee = p
  return 0
}

@c public func goalloc_aligned_alloc(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
  guard isPowerOfTwo(alignment) else {
    goalloc_set_errno(goalloc_errno_einval())
    return nil
  }
  return goAlignedAlloc(size, alignment: alignment, mallocMode: true)
}

@c public func goalloc_memalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
  if alignment < 0 || alignment > maxAlignment {  // negative: a size_t above Int.max
    goalloc_set_errno(goalloc_errno_einval())
    return nil
  }
  var a = 1
  while a < alignment { a <<= 1 }  // glibc rounds a non-power-of-two alignment up
  return goAlignedAlloc(size, alignment: a, mallocMode: true)
}

@c public func goalloc_valloc(_ size: Int) -> UnsafeMutableRawPointer? {
  goAlignedAlloc(size, alignment: 4096, mallocMode: true)
}

@c public func goalloc_pvalloc(_ size: Int) -> UnsafeMutableRawPointer? {
  if size < 0 || size > maxAllocSize {
    goalloc_set_errno(goalloc_errno_enomem())
    return nil
  }
  return goAlignedAlloc((size + 4095) & ~4095, alignment: 4096, mallocMode: true)
}

@c public func goalloc_malloc_usable_size(_ p: UnsafeMutableRawPointer?) -> Int {
  usableSize(p)
}

@c public func goalloc_malloc_trim(_ pad: Int) -> Int32 {
  goReleaseFreeMemory() > 0 ? 1 : 0
}

@c public func goalloc_mallopt(_ param: Int32, _ value: Int32) -> Int32 {
  1  // accepted and ignored: glibc's tunables do not apply to GoAlloc
}

/// Gives empty spans back to the page heap and free pages back to the OS. Returns bytes released.
@c public func goalloc_release_free_memory() -> Int {
  goReleaseFreeMemory()
}

/// Prints MemStats to stderr (as GOALLOC_DEBUG=stats=1 does at exit).
@c public func goalloc_print_stats() {
  goReadMemStats().write(to: 2)
}

/// Verifies the heap's invariants; returns 1 when they hold, else 0 after one line on stderr.
@c public func goalloc_check_heap() -> Int32 {
  guard let h = globalHeap() else { return 1 }
  return h.checkHeapAndReport() ? 1 : 0
}

/// Fills `out` (a `struct goalloc_memstats`, include/goalloc.h) with a MemStats snapshot.
@c public func goalloc_read_memstats(_ out: UnsafeMutablePointer<UInt64>?) {
  guard let out else { return }
  goReadMemStats().store(to: out)
}

/// Go's PauseNs and PauseEnd rings (256 entries each; either pointer may be nil).
@c public func goalloc_gc_read_pauses(_ ns: UnsafeMutablePointer<UInt64>?, _ end: UnsafeMutablePointer<UInt64>?) {
  let m = goReadMemStats()
  for i in 0..<256 {
    ns?[i] = m.pauseNs[i]
    end?[i] = m.pauseEnd[i]
  }
}

/// Opens `path` ("-" for stderr), lets `body` write to it, closes it. 1 on success.
func writeOutput(_ path: UnsafePointer<CChar>?,
                 _ body: (UnsafeMutablePointer<MHeap>, Int32) -> Void) -> Int32 {
  guard let path, let h = globalHeap() else { return 0 }
  let fd = goalloc_open_output(path)
  if fd < 0 { return 0 }
  body(h, fd)
  goalloc_close_output(fd)
  return 1
}

/// Writes the heap map (text format, see HeapMap.swift) to `path` ("-" for stderr). 1 on success.
@c public func goalloc_write_heapmap(_ path: UnsafePointer<CChar>?) -> Int32 {
  writeOutput(path) { h, fd in h.writeHeapMap(to: fd) }
}

/// Writes the sampled heap profile (raw: HeapProfile.swift) to `path`; needs GOALLOC_DEBUG=memprofile=...
/// to have been set at start. 1 on success.
@c public func goalloc_write_heap_profile(_ path: UnsafePointer<CChar>?) -> Int32 {
  writeOutput(path) { h, fd in h.writeHeapProfile(to: fd) }
}

/// Called by the library's constructor (Sources/CGoAllocABI/abi.c): the heap is set up and
/// GOALLOC_DEBUG read as soon as libc is ready, even in a program that has not allocated yet.
@c public func goalloc_on_load() {
  loadHook()
}

// MARK: the GC mode (include/goalloc.h documents each contract; GoAllocCore/MGC.swift the design)

@c public func goalloc_gc_malloc(_ size: Int) -> UnsafeMutableRawPointer? { goGCMalloc(size, noscan: false) }

@c public func goalloc_gc_malloc_noscan(_ size: Int) -> UnsafeMutableRawPointer? { goGCMalloc(size, noscan: true) }

@c public func goalloc_gc_malloc_uncollectable(_ size: Int) -> UnsafeMutableRawPointer? { goGCMallocUncollectable(size) }

@c public func goalloc_gc_realloc(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? { goGCRealloc(p, size) }

@c public func goalloc_gc_free(_ p: UnsafeMutableRawPointer?) { goGCFree(p) }

@c public func goalloc_gc_collect() -> Int32 { goGCCollect() }

@c public func goalloc_gc_set_percent(_ percent: Int32) -> Int32 { goGCSetPercent(percent) }

@c public func goalloc_gc_set_memory_limit(_ bytes: UInt64) -> UInt64 { goGCSetMemoryLimit(bytes) }

@c public func goalloc_gc_register_thread() -> Int32 { goGCRegisterThread() }

@c public func goalloc_gc_unregister_thread() { goGCUnregisterThread() }

@c public func goalloc_gc_add_roots(_ lo: UnsafeMutableRawPointer?, _ hi: UnsafeMutableRawPointer?) -> Int32 {
  goGCAddRoots(UInt(bitPattern: lo), UInt(bitPattern: hi))
}

@c public func goalloc_gc_remove_roots(_ lo: UnsafeMutableRawPointer?, _ hi: UnsafeMutableRawPointer?) -> Int32 {
  goGCRemoveRoots(UInt(bitPattern: lo), UInt(bitPattern: hi))
}

@c public func goalloc_gc_base(_ p: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? { goGCBase(p) }

@c public func goalloc_gc_write_barrier(_ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ value: UnsafeMutableRawPointer?) {
  goGCWriteBarrier(slot, value)
}

// MARK: pools (Pool.swift; include/goalloc.h has the contracts)

@c public func goalloc_pool_create(_ size: Int, _ initFn: PoolConstructor?, _ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  poolCreate(size: size, constructor: initFn, arg: arg)
}

@c public func goalloc_pool_get(_ pool: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? { poolGet(pool) }

@c public func goalloc_pool_put(_ pool: UnsafeMutableRawPointer?, _ obj: UnsafeMutableRawPointer?) { poolPut(pool, obj) }

@c public func goalloc_pool_destroy(_ pool: UnsafeMutableRawPointer?) { poolDestroy(pool) }

/// struct goalloc_pool_stats: six uint64_t, in PoolStats' order.
@c public func goalloc_pool_stats(_ pool: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UInt64>?) {
  guard let out else { return }
  let s = poolStats(pool)
  out[0] = s.size
  out[1] = s.pooled
  out[2] = s.victims
  out[3] = s.created
  out[4] = s.dropped
  out[5] = s.rotations
}

// MARK: finalizers, cleanups, weak pointers (GoAllocCore/MFinal.swift, Weak.swift)
// Function pointers arrive as raw pointers (the same registers as goalloc.h's typed ones).

@c public func goalloc_gc_set_finalizer(_ p: UnsafeMutableRawPointer?, _ fn: UnsafeRawPointer?,
                                        _ arg: UnsafeMutableRawPointer?) -> Int32 { goGCSetFinalizer(p, fn, arg) }

@c public func goalloc_gc_add_cleanup(_ p: UnsafeMutableRawPointer?, _ fn: UnsafeRawPointer?,
                                      _ arg: UnsafeMutableRawPointer?) -> goalloc_cleanup_handle {
  let c = goGCAddCleanup(p, fn, arg)
  return goalloc_cleanup_handle(id: c.id, hidden: c.hidden)
}

@c public func goalloc_gc_cancel_cleanup(_ c: goalloc_cleanup_handle) -> Int32 { goGCCancelCleanup(c.id, c.hidden) }

@c public func goalloc_gc_cleanups_pending() -> Int { goGCCleanupsPending() }

@c public func goalloc_gc_weak_make(_ p: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? { goGCWeakMake(p) }

@c public func goalloc_gc_weak_get(_ w: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? { goGCWeakGet(w) }

// bdwgc's finalization and links (Sources/CGoAllocABI/bdwgc_finalize.c; not exported from the
// library: exports.map lists only goalloc.h's names and GC_*).

@c public func goalloc_gc_bdwgc_register_finalizer(_ p: UnsafeMutableRawPointer?, _ fn: UnsafeRawPointer?,
                                                   _ cd: UnsafeMutableRawPointer?, _ order: Int32,
                                                   _ ofn: UnsafeMutablePointer<UnsafeRawPointer?>?,
                                                   _ ocd: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
  goGCBdwgcRegisterFinalizer(p, fn, cd, UInt8(truncatingIfNeeded: order), ofn, ocd)
}

@c public func goalloc_gc_bdwgc_take_finalizer(_ fn: UnsafeMutablePointer<UnsafeRawPointer?>?,
                                               _ obj: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                               _ cd: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
  guard let fn, let obj, let cd else { return 0 }
  return goGCBdwgcTakeFinalizer(fn, obj, cd)
}

@c public func goalloc_gc_bdwgc_register_link(_ link: UnsafeMutableRawPointer?, _ obj: UnsafeRawPointer?,
                                              _ long: Int32) -> Int32 {
  guard let link else { return 2 }
  return goGCRegisterLink(link, obj, long: long != 0)
}

@c public func goalloc_gc_bdwgc_unregister_link(_ link: UnsafeMutableRawPointer?, _ long: Int32) -> Int32 {
  goGCUnregisterLink(link, long: long != 0)
}

@c public func goalloc_gc_bdwgc_move_link(_ link: UnsafeMutableRawPointer?, _ newLink: UnsafeMutableRawPointer?,
                                          _ long: Int32) -> Int32 {
  guard let newLink else { return 4 }
  return goGCMoveLink(link, newLink, long: long != 0)
}
