// MGC: the GC mode's collector (Go's mgc.go): its state, the cycle, and the core of its API.
//
// Stage 1 collects with the world stopped. One cycle (`gcCollect`), under the collector's lock:
//   1. off:         the images' writable segments are listed (dl_iterate_phdr, before any lock:
//                   the loader's lock may be held by a thread we are about to stop);
//   2. stop:        every allocator lock is taken (the fork handler's order, `lockAll`), then
//                   every registered thread (every thread with an mcache: Process.swift) gets the
//                   stop signal and acknowledges from its handler (stw.c). A thread inside a GC
//                   allocation's critical section stops when it leaves it, so no GC cache is
//                   caught half-updated; the malloc fast paths need no such section (the
//                   collector reads nothing of theirs that can be half-updated: MGCMark);
//   3. mark:        roots, then the span queue and the large-object queue (MGCMark.swift);
//   4. sweep:       every collected span, eagerly, still in the stop (MGCSweep.swift), and
//                   `sweepgen` advances by 2;
//   5. pace:        the next heap goal (MGCPacer.swift); the world restarts.
// Phases for stage 2 (concurrent mark) are named by `GCPhase`; the stop above is what stage 2
// splits into sweep termination, concurrent mark with assists charged at GC refill
// (`gcRefillCharge`), and mark termination.
//
// Invariants: at most one cycle at a time (`lock`); while the world is stopped only the
// collector touches spans, centrals and the heap; a collected span is owned by one GC cache
// (owner = cache | 2), or sits on its mcentral's partial list (free slots), or floats (full);
// `heapLive` counts a cached span's free slots as allocated (Go's heapLive).
import CGoAllocShim

/// The collector's phase (Go's gcphase). Stage 1 goes off -> stopped (mark and sweep) -> off.
enum GCPhase: UInt32 { case off = 0, mark = 1, sweep = 2 }

/// The GC mode's state, one mapping per heap (created on first use).
public struct GCState {
  var _first: UInt64 = 0       // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0       // one cycle at a time; the root table
  var percent: Int32 = 100     // GOGC (-1: off); atomic
  var phase: UInt32 = 0        // GCPhase
  var sweepgen: UInt32 = 0     // Go's mheap_.sweepgen: +2 per cycle (spans: see MSpan)
  var memLimit: UInt64 = 0     // bytes; 0 = none (atomic)
  var heapLive: UInt64 = 0     // atomic: bytes of collected objects, at span granularity
  var heapGoal: UInt64 = 0     // atomic: the heap size that triggers the next cycle
  var heapMarked: UInt64 = 0   // bytes marked by the last cycle
  var stackBytes: UInt64 = 0   // stacks scanned by the last cycle
  var globalsBytes: UInt64 = 0 // image segments, added roots and scanned malloc memory
  var nonHeap: UInt64 = 0      // memory the collector cannot free (MGCPacer), at the last cycle
  var numGC: UInt32 = 0        // atomic
  var numForcedGC: UInt32 = 0
  var pauseTotalNs: UInt64 = 0
  var lastGC: UInt64 = 0       // wall clock, ns since 1970
  var startNanos: UInt64 = 0   // monotonic clock at creation (GCCPUFraction)
  var frees: UInt64 = 0        // objects freed by sweeps and explicit large frees (atomic)
  var freedBytes: UInt64 = 0
  var largeMallocs: UInt64 = 0 // large collected objects (atomic)
  var largeBytes: UInt64 = 0
  var flushedMallocs: UInt64 = 0  // dead GC caches' counters (caches lock)
  var flushedBytes: UInt64 = 0
  var sys: UInt64 = 0          // GCSys: this mapping and the GC caches
  var forcedNext = false       // the cycle being started was asked for
  var pauseNs: UnsafeMutablePointer<UInt64>
  var pauseEnd: UnsafeMutablePointer<UInt64>
  var cachealloc: FixAlloc     // GC caches (heap lock)
  var work: GCWork             // the mark's queues (MGCMark)
  var roots: UnsafeMutablePointer<UInt>   // added roots: [lo, hi) pairs
  var nroots = 0
  var images: UnsafeMutablePointer<UInt>  // the images' writable segments of this cycle
  var nimages = 0

  static let pauseRing = 256
  static let maxRoots = 4096
  static let maxImages = 2048
}

/// A thread's GC cache: its current collected span per shape (size class x noscan), and its
/// counters. Reached from its mcache's header (`MCacheHeader.gc`); owner thread only (and the
/// collector while the world is stopped).
enum GCCache {
  static let spans = 0                          // [numSizeClasses * 2] SpanPtr
  static let mallocs = numSizeClasses * 2       // word index of the counters
  static let bytes = mallocs + 1
  static let words = bytes + 1
  @inline(__always) static func span(_ g: UnsafeMutableRawPointer, _ shape: Int) -> UnsafeMutablePointer<SpanPtr> {
    g.assumingMemoryBound(to: SpanPtr.self) + shape
  }
  @inline(__always) static func counter(_ g: UnsafeMutableRawPointer, _ i: Int) -> UnsafeMutablePointer<UInt64> {
    g.assumingMemoryBound(to: UInt64.self) + i
  }
  /// MSpan.owner of a span cached by g: never an mcache's tag (those are 64-aligned, | 0 or 1).
  @inline(__always) static func ownerTag(_ g: UnsafeMutableRawPointer) -> UInt { UInt(bitPattern: g) | 2 }
}

nonisolated(unsafe) var gcInitLock: LockWord = 0
/// The GC state of the process-wide heap (the only heap the GC mode serves), once created.
nonisolated(unsafe) var gcStateWord: UInt = 0

extension UnsafeMutablePointer where Pointee == MHeap {
  /// The GC state, created on first use (nil when the OS refuses memory).
  func gcState() -> UnsafeMutablePointer<GCState>? {
    if let g = gcExisting { return g }
    lockAcquire(&gcInitLock)
    defer { lockRelease(&gcInitLock) }
    if let g = gcExisting { return g }
    let head = roundUp(MemoryLayout<GCState>.stride, 64)
    let rings = 2 * GCState.pauseRing * 8
    let roots = 2 * GCState.maxRoots * 8, images = 2 * GCState.maxImages * 8
    let spanQ = GCWork.spanCapacity * 8, largeQ = 2 * GCWork.chunkCapacity * 8
    let bytes = roundUp(head + rings + roots + images + spanQ + largeQ, 4096)
    guard let mem = sysMap(bytes) else { return nil }
    let g = mem.bindMemory(to: GCState.self, capacity: 1)
    var at = head
    let pauseNs = (mem + at).bindMemory(to: UInt64.self, capacity: GCState.pauseRing); at += GCState.pauseRing * 8
    let pauseEnd = (mem + at).bindMemory(to: UInt64.self, capacity: GCState.pauseRing); at += GCState.pauseRing * 8
    let r = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCState.maxRoots); at += roots
    let im = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCState.maxImages); at += images
    let sq = (mem + at).bindMemory(to: SpanPtr?.self, capacity: GCWork.spanCapacity); at += spanQ
    let lq = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCWork.chunkCapacity)
    g.initialize(to: GCState(pauseNs: pauseNs, pauseEnd: pauseEnd,
                             cachealloc: FixAlloc(size: GCCache.words * 8),
                             work: GCWork(spans: sq, chunks: lq), roots: r, images: im))
    g.pointee.percent = Int32(goalloc_gc_percent_from_env(100))
    g.pointee.memLimit = goalloc_memlimit_from_env()
    g.pointee.sys = UInt64(bytes)
    g.pointee.startNanos = goalloc_nanotime()
    g.gcSetGoal(marked: 0)
    atomicStoreUInt(&gcStateWord, UInt(bitPattern: g))
    // The stop handler from the start: every thread registered from now on unblocks its signal
    // (gcThreadStarted); this one now.
    _ = goalloc_gc_install(0)
    goalloc_gc_unblock()
    return g
  }

  /// The GC state if the GC mode was used (nil otherwise).
  @inline(__always) var gcExisting: UnsafeMutablePointer<GCState>? {
    UnsafeMutablePointer<GCState>(bitPattern: atomicLoadUInt(&gcStateWord))
  }
}

// MARK: the cycle

/// What `goalloc_gc_collect` returns when it refuses (a signal handler, or a GC allocation of
/// this thread that a signal handler interrupted).
let gcRefused: Int32 = -1

/// Runs a collection. `forced`: asked for by the program (goalloc_gc_collect); else the
/// allocation trigger, which skips the cycle if another thread completed one meanwhile.
/// Returns 0, or gcRefused after one line on stderr.
@discardableResult
func gcCollect(forced: Bool) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcState() else { return 0 }
  if goalloc_gc_thread_self().pointee.busy != 0 || goalloc_in_signal_handler() != 0 {
    goalloc_write(2, "goalloc: gc: collection refused: called from a signal handler (not supported; the collector stops threads with a signal and takes the allocator's locks)\n")
    return gcRefused
  }
  // The calling thread is a root too: it must be registered (have a cache).
  guard currentCache() != nil else { return 0 }
  let seen = atomicLoad32(&gc.pointee.numGC)
  lockAcquire(&gc.pointee.lock)
  if !forced && atomicLoad32(&gc.pointee.numGC) != seen {
    lockRelease(&gc.pointee.lock)
    return 0
  }
  if !forced && atomicLoad64(&gc.pointee.heapLive) < atomicLoad64(&gc.pointee.heapGoal) {
    lockRelease(&gc.pointee.lock)
    return 0
  }
  if goalloc_gc_install(0) < 0 {
    lockRelease(&gc.pointee.lock)
    goalloc_write(2, "goalloc: gc: collection refused: cannot install the stop signal handler\n")
    return gcRefused
  }
  gc.pointee.forcedNext = forced
  // Before any lock: the loader's lock may be held by a thread about to be stopped.
  gc.pointee.nimages = min(GCState.maxImages, Int(goalloc_image_ranges(gc.pointee.images, Int32(GCState.maxImages))))
  // The caller's callee-saved registers go onto its stack; the cycle scans from below them.
  goalloc_gc_with_registers(gcCycleEntry, UnsafeMutableRawPointer(gc))
  lockRelease(&gc.pointee.lock)
  return 0
}

/// goalloc_gc_with_registers' callback: the cycle, with the caller's stack pointer.
func gcCycleEntry(_ arg: UnsafeMutableRawPointer?, _ sp: UInt) {
  guard let arg, let h = globalHeap() else { return }
  gcCycle(h, arg.assumingMemoryBound(to: GCState.self), callerSP: sp)
}

func gcCycle(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, callerSP: UInt) {
  let t0 = goalloc_nanotime()
  h.lockAll()
  // Stop every registered thread but this one.
  goalloc_gc_begin_stop()
  let me = goalloc_gettid()
  var sent: Int32 = 0
  var it = h.pointee.caches.pointee.head
  while let raw = it {
    let c = MCache(raw)
    it = c.link.pointee.next
    if c.header.pointee.gcThread != nil && c.header.pointee.tid != me {
      sent += goalloc_gc_signal_thread(c.header.pointee.tid)
    }
  }
  goalloc_gc_wait_stopped(sent)
  atomicStore32(&gc.pointee.phase, GCPhase.mark.rawValue)
  gc.gcMark(h, callerSP: callerSP, me: me)
  gc.gcMarkSpecials(h)  // finalizers, cleanups, weak handles (MGCSpecialsMark.swift)
  atomicStore32(&gc.pointee.phase, GCPhase.sweep.rawValue)
  let live = gc.gcSweep(h)
  atomicStore64(&gc.pointee.heapLive, live.live)
  gc.gcMeasureNonHeap(h, collectedSpanBytes: live.spanBytes)
  gc.gcSetGoal(marked: live.marked)
  atomicStore32(&gc.pointee.phase, GCPhase.off.rawValue)
  goalloc_gc_start_world()
  h.unlockAll()
  let t1 = goalloc_nanotime()
  let n = Int(atomicLoad32(&gc.pointee.numGC))
  gc.pointee.pauseNs[n % GCState.pauseRing] = t1 - t0
  gc.pointee.pauseEnd[n % GCState.pauseRing] = goalloc_walltime()
  gc.pointee.pauseTotalNs &+= t1 - t0
  gc.pointee.lastGC = goalloc_walltime()
  if gc.pointee.forcedNext { gc.pointee.numForcedGC &+= 1 }
  atomicStore32(&gc.pointee.numGC, UInt32(n + 1))
}

// MARK: threads

/// Hands a thread's GC cache back (thread exit, unregistration): its spans go to their
/// mcentrals, its counters to the heap, the cache to the GC state's allocator.
func gcReleaseCache(_ c: MCache) {
  guard let g = c.header.pointee.gc, let gc = c.heap.gcExisting else { return }
  let h = c.heap
  for i in 0..<(numSizeClasses * 2) {
    goalloc_gc_enter_busy()
    let slot = GCCache.span(g, i)
    let s = slot.pointee
    slot.pointee = h.pointee.emptySpan
    goalloc_gc_leave_busy()
    if s != h.pointee.emptySpan { gcUncacheSpan(h, gc, s) }
  }
  let list = h.pointee.caches
  lockAcquire(&list.pointee.lock)
  gc.pointee.flushedMallocs &+= atomicLoadRelaxed64(GCCache.counter(g, GCCache.mallocs))
  gc.pointee.flushedBytes &+= atomicLoadRelaxed64(GCCache.counter(g, GCCache.bytes))
  c.header.pointee.gc = nil
  lockRelease(&list.pointee.lock)
  lockAcquire(&h.pointee.lock)
  gc.pointee.cachealloc.free(g)
  lockRelease(&h.pointee.lock)
}

/// The calling thread's GC cache, created on first use (nil when out of memory).
@inline(__always) func gcCache(_ c: MCache, _ gc: UnsafeMutablePointer<GCState>) -> UnsafeMutableRawPointer? {
  if let g = c.header.pointee.gc { return g }
  return gcCreateCache(c, gc)
}

@inline(never) func gcCreateCache(_ c: MCache, _ gc: UnsafeMutablePointer<GCState>) -> UnsafeMutableRawPointer? {
  let h = c.heap
  lockAcquire(&h.pointee.lock)
  let before = gc.pointee.cachealloc.sys
  let m = gc.pointee.cachealloc.alloc(&h.pointee.persistent)
  gc.pointee.sys &+= UInt64(gc.pointee.cachealloc.sys - before)
  lockRelease(&h.pointee.lock)
  guard let g = m else { return nil }
  for i in 0..<(numSizeClasses * 2) { GCCache.span(g, i).pointee = h.pointee.emptySpan }
  // Published under the caches lock: MemStats reads the counters through it.
  let list = h.pointee.caches
  lockAcquire(&list.pointee.lock)
  c.header.pointee.gc = g
  lockRelease(&list.pointee.lock)
  return g
}

/// A thread got its cache (Process.swift): it must take the stop signal, whenever the GC mode
/// starts (its mask may have come blocked from its creator, or across exec). One system call
/// per thread, on its first allocation.
@inline(__always) func gcThreadStarted() { goalloc_gc_unblock() }

// MARK: fork

/// pthread_atfork prepare: before every allocator lock, the collector's (its order).
func gcForkPrepare(_ h: UnsafeMutablePointer<MHeap>) {
  if let gc = h.gcExisting { lockAcquire(&gc.pointee.lock) }
}
func gcForkParent(_ h: UnsafeMutablePointer<MHeap>) {
  if let gc = h.gcExisting { lockRelease(&gc.pointee.lock) }
}
func gcForkChild(_ h: UnsafeMutablePointer<MHeap>) {
  if let gc = h.gcExisting { lockReset(&gc.pointee.lock) }
  lockReset(&gcInitLock)
  goalloc_gc_after_fork_child()
  specialsForkChild()
}

// MARK: the API's core (MallocGC.swift has allocation and free)

/// goalloc_gc_collect: a forced collection. 0, or -1 when refused (signal handler).
public func goGCCollect() -> Int32 { gcCollect(forced: true) }

/// goalloc_gc_set_percent: sets GOGC (-1 or any negative: off), returns the old value.
public func goGCSetPercent(_ percent: Int32) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcState() else { return 100 }
  lockAcquire(&gc.pointee.lock)
  let old = gc.pointee.percent
  gc.pointee.percent = percent < 0 ? -1 : percent
  gc.gcSetGoal(marked: gc.pointee.heapMarked)
  lockRelease(&gc.pointee.lock)
  return old
}

/// goalloc_gc_set_memory_limit: the soft limit in bytes (0: none); returns the old one.
public func goGCSetMemoryLimit(_ bytes: UInt64) -> UInt64 {
  guard let h = globalHeap(), let gc = h.gcState() else { return 0 }
  lockAcquire(&gc.pointee.lock)
  let old = gc.pointee.memLimit
  atomicStore64(&gc.pointee.memLimit, bytes)
  gc.gcSetGoal(marked: gc.pointee.heapMarked)
  lockRelease(&gc.pointee.lock)
  return old
}

/// goalloc_gc_register_thread: the calling thread gets a cache (so it is stopped and its stack
/// scanned). Returns 0, or -1 when out of memory.
public func goGCRegisterThread() -> Int32 {
  guard let h = globalHeap(), h.gcState() != nil, let c = currentCache() else { return -1 }
  if c.header.pointee.gcThread == nil { return -1 }
  return 0
}

/// goalloc_gc_unregister_thread: hands the calling thread's caches back; until it allocates
/// again (which registers it again) its stack is not a root.
public func goGCUnregisterThread() { releaseThreadCache() }

/// goalloc_gc_add_roots: [lo, hi) becomes a root. 0; -1 (with one line) for lo > hi or a full
/// table.
public func goGCAddRoots(_ lo: UInt, _ hi: UInt) -> Int32 {
  if lo > hi {
    goalloc_write(2, "goalloc: gc: add_roots: lo > hi (the range is [lo, hi)); ignored\n")
    return -1
  }
  guard let h = globalHeap(), let gc = h.gcState() else { return -1 }
  if lo == hi { return 0 }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  let n = gc.pointee.nroots
  if n == GCState.maxRoots {
    goalloc_write(2, "goalloc: gc: add_roots: the root table is full (4096 ranges); ignored\n")
    return -1
  }
  gc.pointee.roots[2 * n] = lo
  gc.pointee.roots[2 * n + 1] = hi
  gc.pointee.nroots = n + 1
  return 0
}

/// goalloc_gc_remove_roots: every added range inside [lo, hi) stops being a root. 0; -1 for
/// lo > hi.
public func goGCRemoveRoots(_ lo: UInt, _ hi: UInt) -> Int32 {
  if lo > hi {
    goalloc_write(2, "goalloc: gc: remove_roots: lo > hi (the range is [lo, hi)); ignored\n")
    return -1
  }
  guard let h = globalHeap(), let gc = h.gcState() else { return -1 }
  lockAcquire(&gc.pointee.lock)
  var i = 0
  while i < gc.pointee.nroots {
    let a = gc.pointee.roots[2 * i], b = gc.pointee.roots[2 * i + 1]
    if a >= lo && b <= hi {
      let last = gc.pointee.nroots - 1
      gc.pointee.roots[2 * i] = gc.pointee.roots[2 * last]
      gc.pointee.roots[2 * i + 1] = gc.pointee.roots[2 * last + 1]
      gc.pointee.nroots = last
    } else {
      i += 1
    }
  }
  lockRelease(&gc.pointee.lock)
  return 0
}

/// The GC figures of MemStats (caches lock and heap lock held by the caller).
func gcAddStats(_ h: UnsafeMutablePointer<MHeap>, _ m: inout MemStats) {
  guard let gc = h.gcExisting else { return }
  var mallocs = gc.pointee.flushedMallocs &+ atomicLoad64(&gc.pointee.largeMallocs)
  var bytes = gc.pointee.flushedBytes &+ atomicLoad64(&gc.pointee.largeBytes)
  var it = h.pointee.caches.pointee.head
  while let raw = it {
    let c = MCache(raw)
    it = c.link.pointee.next
    if let g = c.header.pointee.gc {
      mallocs &+= atomicLoadRelaxed64(GCCache.counter(g, GCCache.mallocs))
      bytes &+= atomicLoadRelaxed64(GCCache.counter(g, GCCache.bytes))
    }
  }
  let frees = atomicLoad64(&gc.pointee.frees), freed = atomicLoad64(&gc.pointee.freedBytes)
  m.mallocs &+= mallocs
  m.frees &+= min(frees, mallocs)
  m.totalAlloc &+= bytes
  m.heapObjects = m.mallocs &- m.frees
  m.heapAlloc &+= bytes > freed ? bytes - freed : 0
  m.alloc = m.heapAlloc
  m.gcMallocs = mallocs
  m.gcFrees = frees
  m.gcHeapLive = atomicLoad64(&gc.pointee.heapLive)
  m.nextGC = atomicLoad64(&gc.pointee.heapGoal)
  m.numGC = atomicLoad32(&gc.pointee.numGC)
  m.numForcedGC = gc.pointee.numForcedGC
  m.pauseTotalNs = gc.pointee.pauseTotalNs
  m.lastGC = gc.pointee.lastGC
  m.gcSys = gc.pointee.sys
  for i in 0..<GCState.pauseRing {
    m.pauseNs[i] = gc.pointee.pauseNs[i]
    m.pauseEnd[i] = gc.pointee.pauseEnd[i]
  }
  let elapsed = goalloc_nanotime() &- gc.pointee.startNanos
  if elapsed > 0 { m.gcCPUFraction = Double(gc.pointee.pauseTotalNs) / Double(elapsed) }
}
