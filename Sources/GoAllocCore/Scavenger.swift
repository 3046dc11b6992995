// Scavenger: gives free heap pages back to the OS (Go's mgcscavenge), and keeps the heap under
// a soft memory limit (GOALLOC_MEMLIMIT, Go's GOMEMLIMIT).
//
// Policy (malloc mode has no GC heap goal; the recent peak of in-use pages stands in for it):
//   every tick (100 ms): peak = max(inUse, peak - (peak - inUse)/16)   (decays, ~1 s half-life)
//                        goal = peak + peak/10                          (keep ~10% over it)
//                        retained = inUse + free-but-not-released pages
//   if retained > goal: release up to 16 MiB of free pages per tick (about 1-2% of one CPU),
//   highest addresses first, runs of >= 64 KiB before shorter ones, never in dense 4 MiB chunks (>= 96.9%
//   of pages in use), so densely used memory (and the transparent huge pages behind it; arenas
//   and chunks are 2 MiB-aligned) is not broken up for a few pages. Every 10 ticks, empty spans still parked on
//   mcentral lists are reclaimed first. Every tick, the LargeCache is emptied, and so are the
//   LargeBins of the threads that used theirs for nothing since the previous tick.
// Near the memory limit (retained >= 95% of it) the scavenger releases everything free, at once
// and in any run length, in the background tick and synchronously before the heap grows.
// `releaseAll` (goalloc_release_free_memory, malloc_trim) does the same on demand. A scavenge
// (but for the gradual one of a tick) first takes back every thread's LargeBins.
// `nearLimit` (set at 13/16 of the limit, cleared below 3/4, recomputed whenever the heap takes or
// gives back a span; never set while the live objects, measured each tick, fill the limit) says
// the heap is near its limit; then a span given back to the page heap is released at once
// (`freeSpan`), the LargeCache and the mcentrals keep no free span, and the threads' caches
// help spans empty (MemoryLimit.swift). What a limit cannot release: pages of spans that still
// hold an object (docs/DESIGN.md, "The memory limit").
//
// Release is madvise(MADV_DONTNEED): RSS drops at once and the pages read as zero when reused,
// which the page allocator records (scavenged bits), so a span built on them skips zeroing.
// MADV_FREE would be cheaper but leaves RSS high until memory pressure, which is what users of
// a drop-in allocator complain about.
//
// Locking: `lock` serializes scavenger passes; the heap lock is held only to take runs out of
// the page allocator and to put them back, never across madvise. The background thread starts
// lazily: at the first slow-path malloc (once libc is up) after the heap first holds 4 MiB of
// in-use pages, so small processes never pay for its thread and stack. It never allocates, is
// disabled by GOALLOC_DEBUG=scavenger=0, and is restarted lazily in a fork child.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// In-use pages at which the background scavenger is first wanted (4 MiB).
let scavengerStartPages = (4 << 20) >> pageShift

public struct ScavengerState {
  var _first: UInt64 = 0          // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0          // one pass at a time
  var started: UInt32 = 0         // atomic: 0 not started, 1 running, 2 disabled
  var wanted: UInt32 = 0          // atomic: start on the next slow-path malloc
  var background: Bool = false    // only the process-wide heap runs a background thread
  var runs: UnsafeMutablePointer<UInt>  // (base, npages) pairs of the current pass
  var peakPages = 0               // decaying recent peak of in-use pages
  var ticks = 0
  var memLimit: UInt64 = 0        // atomic: bytes; 0 = none
  var nearLimit: UInt32 = 0       // atomic: 0; 1 near memLimit (from 13/16 of it down to 3/4); 2 over it
  var releasedAtFree: UInt64 = 0  // atomic: bytes of spans released as they were freed (near the limit)
  var releasedInSpans: UInt64 = 0 // atomic: bytes of free slots' pages released inside spans (over it)
  var liveBytes: UInt64 = 0       // atomic: HeapAlloc at the last tick (with a limit only)
  var releasedBytes: UInt64 = 0   // all time
  var passes: UInt64 = 0

  static let maxRuns = 256
  static let tickNanos: UInt64 = 100_000_000
  static let bytesPerTick = 16 << 20
  static let minRunPages = 8      // 64 KiB
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Releases up to `maxBytes` of free, unreleased pages (runs of at least `minRunPages`).
  /// With `bins`, every thread's LargeBins go back to the page heap first. Returns the bytes
  /// released. Takes the heap lock (and, with `bins`, the caches lock); must not be called with
  /// either held.
  @discardableResult
  public func scavenge(maxBytes: Int, minRunPages: Int = 1, skipDense: Bool = false, bins: Bool = true) -> Int {
    if bins { takeBackBins() }
    let sc = pointee.scavenger
    lockAcquire(&sc.pointee.lock)
    var released = 0
    lockAcquire(&pointee.lock)
    flushLargeCacheLocked()
    pointee.pages.flushCache()  // its free pages, visible to takeUnscavenged
    lockRelease(&pointee.lock)
    while released < maxBytes {
      lockAcquire(&pointee.lock)
      let left = maxBytes - released
      let n = pointee.pages.takeUnscavenged(maxPages: left / pageSize + (left % pageSize == 0 ? 0 : 1),
                                             minRun: minRunPages, skipDense: skipDense,
                                             into: sc.pointee.runs,
                                             capacity: ScavengerState.maxRuns)
      lockRelease(&pointee.lock)
      if n == 0 { break }
      for r in 0..<n {
        let base = sc.pointee.runs[2 * r], np = Int(sc.pointee.runs[2 * r + 1])
        _ = goalloc_sys_release(UnsafeMutableRawPointer(bitPattern: base), np * pageSize)
        released += np * pageSize
      }
      lockAcquire(&pointee.lock)
      pointee.pages.finishScavenge(sc.pointee.runs, n)
      updateNearLimitLocked()
      lockRelease(&pointee.lock)
    }
    sc.pointee.releasedBytes &+= UInt64(released)
    sc.pointee.passes &+= 1
    lockRelease(&sc.pointee.lock)
    return released
  }

  /// Every free page back to the OS (goReleaseFreeMemory first gives the empty spans back).
  @discardableResult
  public func releaseAll() -> Int {
    scavenge(maxBytes: Int.max)
  }

  /// Bytes the process keeps for the heap: pages in spans plus free pages not released.
  var retainedBytes: Int {
    lockAcquire(&pointee.lock)
    let r = (pointee.pagesInUse + pointee.largeCachedPages + pointee.pages.freePages
             - pointee.pages.scavPages) * pageSize
    lockRelease(&pointee.lock)
    return r
  }

  /// Is the heap near its memory limit (`nearLimit`)? Read on slow paths only.
  @inline(__always) var nearLimit: Bool { atomicLoad32(&pointee.scavenger.pointee.nearLimit) != 0 }
  /// Do the heap's spans and free pages not released add up to more than its memory limit?
  @inline(__always) var overLimit: Bool { atomicLoad32(&pointee.scavenger.pointee.nearLimit) == 2 }

  /// Sets `nearLimit` from the pages the heap retains now: near from 13/16 of the limit until it
  /// falls below 3/4 (so a heap hovering at the threshold does not flip the caches' mode at every
  /// span), over at the limit; never while the live objects (`liveBytes`, measured each tick)
  /// fill the limit: it cannot hold then, and the lean caches' frees and the pages released only
  /// to be faulted in again would cost time for nothing. (Not at 15/16 of it, as before: live
  /// objects at 94-100 % of the limit still let it hold within a few per cent, e.g. memlimit.c's
  /// 64 MiB of large blocks under 68 MiB: 69-71 MiB RSS instead of 71-92.) Heap lock held.
  @inline(__always) func updateNearLimitLocked() {
    let sc = pointee.scavenger
    let limit = atomicLoadRelaxed64(&sc.pointee.memLimit)
    let cur = atomicLoad32(&sc.pointee.nearLimit)
    if limit == 0 || atomicLoadRelaxed64(&sc.pointee.liveBytes) >= limit {
      if cur != 0 { atomicStore32(&sc.pointee.nearLimit, 0) }
      return
    }
    let retained = UInt64((pointee.pagesInUse + pointee.largeCachedPages + pointee.pages.freePages
                           - pointee.pages.scavPages) * pageSize)
    var v: UInt32 = cur == 0 ? (retained >= limit - limit / 16 * 3 ? 1 : 0) : (retained < limit - limit / 4 ? 0 : 1)
    if v == 1 && retained >= limit { v = 2 }
    if v != cur { atomicStore32(&sc.pointee.nearLimit, v) }
  }

  /// A tick's measure of the live objects (HeapAlloc, read by a tier above): recorded, and
  /// `nearLimit` follows it.
  func noteLiveBytes(_ live: UInt64) {
    atomicStore64(&pointee.scavenger.pointee.liveBytes, live)
    lockAcquire(&pointee.lock)
    updateNearLimitLocked()
    lockRelease(&pointee.lock)
  }

  /// Releases [addr, addr + bytes), kernel pages inside an in-use span that hold only free slots
  /// (MemoryLimit.swift), to the OS. No lock held.
  func releaseInSpan(_ addr: UInt, _ bytes: Int) {
    _ = goalloc_sys_release(UnsafeMutableRawPointer(bitPattern: addr), bytes)
    _ = atomicAddRelaxed64(&pointee.scavenger.pointee.releasedInSpans, UInt64(bytes))
  }

  /// Releases the pages of span s, which is about to be freed (empty, owned by the caller alone),
  /// to the OS: near the limit a wholly free span is released at once instead of at the next
  /// scavenge. No lock held.
  func releaseSpanPages(_ s: SpanPtr) {
    let bytes = s.pointee.npages * pageSize
    _ = goalloc_sys_release(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr), bytes)
    _ = atomicAddRelaxed64(&pointee.scavenger.pointee.releasedAtFree, UInt64(bytes))
  }

  /// Before growing by `bytes`: near the memory limit, release what is free first.
  func scavengeForLimit(growing bytes: Int) {
    let limit = atomicLoad64(&pointee.scavenger.pointee.memLimit)
    if limit == 0 { return }
    if UInt64(retainedBytes + bytes) >= limit - limit / 20 { scavenge(maxBytes: Int.max) }
  }

  /// One background tick (see the policy above). `reclaimSpans` gives the mcentrals' parked empty
  /// spans back to the page heap (MHeap.reclaim, a tier above this one).
  func scavengerTick(reclaimSpans: (UnsafeMutablePointer<MHeap>) -> Int) {
    let sc = pointee.scavenger
    lockAcquire(&sc.pointee.lock)  // the tick's own fields share the scavenger's lock
    sc.pointee.ticks += 1
    let doReclaim = sc.pointee.ticks % 10 == 0
    lockRelease(&sc.pointee.lock)
    if doReclaim { _ = reclaimSpans(self) }
    takeBackBins(idleOnly: true)  // the bins of threads that used none for a tick
    lockAcquire(&pointee.lock)
    flushLargeCacheLocked()  // kept at most a tick
    let inUse = pointee.pagesInUse
    let retained = inUse + pointee.pages.freePages - pointee.pages.scavPages
    lockRelease(&pointee.lock)
    lockAcquire(&sc.pointee.lock)
    var peak = sc.pointee.peakPages
    peak = Swift.max(inUse, peak - (peak - inUse) / 16)
    sc.pointee.peakPages = peak
    let limit = atomicLoad64(&sc.pointee.memLimit)
    lockRelease(&sc.pointee.lock)
    if limit != 0 && UInt64(retained * pageSize) >= limit - limit / 20 {
      _ = reclaimSpans(self)
      scavenge(maxBytes: Int.max)
      return
    }
    let goal = peak + peak / 10
    if retained > goal {
      // Long runs first; in a fragmented heap (free spans between live ones) single pages too.
      let want = Swift.min((retained - goal) * pageSize, ScavengerState.bytesPerTick)
      let got = scavenge(maxBytes: want, minRunPages: ScavengerState.minRunPages, skipDense: true, bins: false)
      if got < want { scavenge(maxBytes: want - got, minRunPages: 1, skipDense: true, bins: false) }
    }
  }
}
