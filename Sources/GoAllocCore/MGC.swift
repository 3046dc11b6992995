// MGC: the GC mode's collector (Go's mgc.go): its state, the cycle, and the core of its API.
//
// Stage 1 marks with the world stopped (on GOALLOC_GC_PROCS workers: MGCWorkers) and sweeps
// lazily. One cycle (`gcCollect`), under the
// collector's lock:
//   1. off:         sweep termination: the collecting thread sweeps what the last cycle left
//                   unswept, the world running (MGCSweep); the images' writable segments are
//                   listed (dl_iterate_phdr, before any lock: the loader's lock may be held by a
//                   thread we are about to stop);
//   2. stop:        every allocator lock is taken (the fork handler's order, `lockAll`), then
//                   every registered thread (every thread with an mcache: Process.swift) gets the
//                   stop signal and acknowledges from its handler (stw.c). A thread inside a GC
//                   allocation's critical section stops when it leaves it, so no GC cache is
//                   caught half-updated; the malloc fast paths need no such section (the
//                   collector reads nothing of theirs that can be half-updated: MGCMark). Any
//                   span still unswept is swept now (normally none);
//   3. mark:        roots, then the span queue and the large-object queue (MGCMark.swift), on
//                   the collecting thread and the parked helper threads (MGCWorkers.swift,
//                   started before step 2), sharing work through MGCWork.swift;
//   4. flip:        `sweepgen` advances by 2, so every listed span reads unswept; the spans GC
//                   caches hold (slots and handoff words: threads x shapes at most) are swept
//                   now, nothing else (MGCSweep.swift);
//   5. pace:        the next heap goal (MGCPacer.swift) and the proportional sweep's pace; the
//                   world restarts. Sweeping goes on lazily, proportionally and in the
//                   background; goalloc_gc_collect finishes it before it returns.
// Phases for stage 2 (concurrent mark) are named by `GCPhase`; the stop above is what stage 2
// splits into sweep termination, concurrent mark with assists charged at GC refill
// (`gcRefillCharge`), and mark termination.
//
// Invariants: at most one cycle at a time (`lock`); while the world is stopped only the
// collector touches spans, centrals and the heap; a collected span is held by one GC cache
// (owner = cache | 2: a slot, or the cache's handoff word), or sits on one of its shape's lists
// (MGCCentral); every collected span is swept when a mark begins; `heapLive` counts a held
// span's free slots as allocated (Go's heapLive).
import CGoAllocShim

/// The collector's phase (Go's gcphase). Stage 1 goes off -> stopped (mark and sweep) -> off.
/// The concurrent mode (MGCConcurrent) goes off -> mark (world running, allocation black) ->
/// markTermination (world stopped) -> sweep (the flip) -> off.
enum GCPhase: UInt32 { case off = 0, mark = 1, sweep = 2, markTermination = 3 }

/// The GC mode's state, one mapping per heap (created on first use).
public struct GCState {
  var _first: UInt64 = 0       // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0       // one cycle at a time; the root table
  var percent: Int32 = 100     // GOGC (-1: off); atomic
  var phase: UInt32 = 0        // GCPhase
  var sweepgen: UInt32 = 0     // Go's mheap_.sweepgen: +2 per cycle (spans: see MSpan)
  var memLimit: UInt64 = 0     // bytes; 0 = none (atomic)
  var heapLive: UInt64 = 0     // atomic: bytes of collected objects, at span granularity
  var heapGoal: UInt64 = 0     // atomic: the heap size the next cycle should end by
  var heapTrigger: UInt64 = 0  // atomic: the heap size that starts it (MGCPacer.gcTrigger)
  var runway: UInt64 = 0       // the pacer's: bytes allocated while a cycle marks (0 with the world stopped)
  var assistExpected: UInt64 = 0  // the concurrent mark's expected work: the last cycle's marked bytes
  var assistHard: UInt64 = 0      // and the most it can be: the heap when the mark began
  var assistNs: UInt64 = 0     // atomic: this cycle's time in assists (MGCAssist)
  var assistBytes: UInt64 = 0  // atomic: this cycle's bytes marked by assists
  var assistCount: UInt64 = 0  // atomic: this cycle's assists that marked
  var lastAssist: (ns: UInt64, bytes: UInt64, count: UInt64) = (0, 0, 0)  // the last cycle's
  var totalAssists: (ns: UInt64, bytes: UInt64, count: UInt64) = (0, 0, 0)  // every cycle's but this one's
  var stalls: UInt64 = 0       // atomic: allocations that waited for a concurrent mark (MGCAssist)
  var goalStalls: UInt64 = 0   // atomic: those that waited at the hard goal, for the cycle's end
  var stallNs: UInt64 = 0      // atomic: their waits, in all
  var stallMaxNs: UInt64 = 0   // atomic: the longest wait
  // The CPU limiter (MGCLimiter).
  var limiterFill: UInt64 = 0  // the bucket (CPU ns); collector's lock
  var limiterLast: UInt64 = 0  // when it was last updated (nanotime)
  var limiting: UInt32 = 0     // atomic: the limiter is on
  var limitBound: UInt32 = 0   // atomic: the goal is the memory limit's (GOGC's is further, or off)
  var limitedCycles: UInt64 = 0  // cycles that ended with the limiter on
  var lastCycleEnd: UInt64 = 0   // atomic: nanotime
  var lastCycleGCNs: UInt64 = 0  // atomic: the last cycle's pauses
  var stallsSeen: UInt64 = 0   // stalls when the last concurrent cycle's runway was measured
  var heapMarked: UInt64 = 0   // bytes marked by the last cycle
  var stackBytes: UInt64 = 0   // stacks scanned by the last cycle
  var boundarySP: UInt = 0     // a forced cycle's stack scan start (gcCollect); collector's lock
  var concStarter = 0          // the thread that ran a concurrent cycle's stop 1 (its stack scanned there)
  var stackCopy: UnsafeMutableRawPointer? = nil  // a stopped thread's stack, copied (MGCConcurrent)
  var stackCopyBytes = 0
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
  var markWorkers = 1          // mark workers of the cycle being run (MGCWorkers)
  var concFraction = 0.0       // a concurrent mark's fractional worker: its share of a CPU (0: none)
  var concIdle = (0, 0)        // a concurrent mark's idle workers, and all its workers (gcMarkWorkers)
  var pauseNs: UnsafeMutablePointer<UInt64>
  var pauseEnd: UnsafeMutablePointer<UInt64>
  var cachealloc: FixAlloc     // GC caches (heap lock)
  var work: UnsafeMutablePointer<GCWork>        // the mark's queues (MGCWork)
  var workers: UnsafeMutablePointer<GCWorkers>  // its helper threads (MGCWorkers)
  var roots: UnsafeMutablePointer<UInt>   // added roots: [lo, hi) pairs
  var nroots = 0
  var images: UnsafeMutablePointer<UInt>  // the images' writable segments of this cycle
  var nimages = 0
  // Sweeping (MGCSweep, MGCCentral).
  var spanSets: UnsafeMutablePointer<SpanPtr?>  // [shape][partial/full][parity] list heads
  var sweepMode: UInt32 = 0    // GCSweepMode
  var listed: UInt64 = 0       // atomic: spans on the lists
  var listedPages: UInt64 = 0  // atomic: their pages
  var unswept: UInt64 = 0      // atomic: spans on unswept lists
  var unsweptAtFlip: UInt64 = 0
  var sweepCursor: UInt64 = 0  // atomic: sweepgen << 32 | first shape that may hold unswept spans
  var pagesSwept: UInt64 = 0   // atomic: since the flip
  var sweepPagesPerByte: UInt64 = 0  // atomic: a Double's bits (0: no proportional sweep due)
  var sweepLiveBasis: UInt64 = 0     // atomic: heapLive at the flip
  // gctrace and the last cycle's figures.
  var trace = false
  var logFD: Int32 = -1          // GOALLOC_DEBUG=gclog: the collections' log (gcOpenLog)
  var lastClock: (UInt64, UInt64, UInt64) = (0, 0, 0)  // stop + sweep termination, mark, flip + restart (ns)
  var lastCPU: UInt64 = 0      // CPU time in the pause: the collecting thread and the mark helpers (ns)
  var lastCPUSplit: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)  // concurrent: gctrace's split
  var lastHeapStart: UInt64 = 0  // heapLive when the cycle began
  var lastHeapEnd: UInt64 = 0    // heapLive after the flip
  var lastThreads: Int = 0
  var numPauses: UInt32 = 0    // pauses recorded in the ring (STW: one per cycle; concurrent: two)
  var lastCyclePauseNs: UInt64 = 0  // the last cycle's pauses, summed
  // Concurrent marking (MGCConcurrent, MGCDirty, MGCCheckmark).
  var conc = false             // GOALLOC_DEBUG=gcconc=1
  var checkmark = false        // GOALLOC_DEBUG=gccheckmark=1
  var concBroken = false       // GOALLOC_DEBUG=gcconcbroken=1 (tests: no dirty-page rescan)
  var preclean = false         // GOALLOC_DEBUG=gcpreclean=1 (experimental: MGCDirty's preclean)
  var dirtyMode: Int32 = -1    // goalloc_dirty_mode() once a concurrent cycle ran
  var dirtyRanges: UnsafeMutablePointer<UInt>  // [lo, hi) pairs protected at the period's start
  var ndirtyRanges = 0
  var dirtyOut: UnsafeMutablePointer<UInt>     // goalloc_dirty_scan's pairs
  var blackBytes: UInt64 = 0   // atomic: bytes allocated black during the mark
  var lastDirtyPages: UInt64 = 0   // pages rescanned at the last mark termination
  var lastDirtyBytes: UInt64 = 0   // bytes of marked objects (and root slots) rescanned there
  var lastPauses: (UInt64, UInt64) = (0, 0)  // the last concurrent cycle's two pauses
  var checkmarks: UInt64 = 0   // cycles verified by gccheckmark
  // The background collector thread (MGCConcurrent): finishes cycles the pacer started.
  var bgWord: UInt32 = 0       // atomic, futex: 1 while a cycle is handed to it
  var bgCrew: UInt32 = 0       // atomic: + 1 when the thread must end (fork child, orphaned)
  var bgStarted = false        // collector's lock
  var bgFailed = false
  var poolPending: UInt32 = 0  // atomic: a background cycle ended; the pools' turn is due
  var concCPU: UInt64 = 0      // the current cycle's collector CPU so far (ns)
  var concT: (UInt64, UInt64) = (0, 0)  // the current cycle's stop 1 start and end (ns)

  static let pauseRing = 256
  static let maxDirtyRanges = 1024
  static let precleanRounds = 4        // MGCConcurrent.gcPreclean
  static let precleanEnough = 128      // pages: a preclean round that found fewer ends it
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
  static let handoffWord = bytes + 1            // a span held outside the slots (MGCCentral)
  static let handoffFromWord = handoffWord + 1  // its markFrom (below)
  static let fromWords = handoffFromWord + 1    // [numSizeClasses * 2] Int: each slot's markFrom
  static let assistDebtWord = fromWords + numSizeClasses * 2  // Int64: the thread's assist debt (MGCAssist)
  static let assistCycleWord = assistDebtWord + 1             // the cycle (numGC) that debt is of
  static let words = assistCycleWord + 1
  /// A cached span's *markFrom* (MGCConcurrent): its freeindex when the mark began or when this
  /// cache took it, whichever came later; slots from there to its freeindex that are not in its
  /// allocBits were allocated during the mark (allocated black).
  @inline(__always) static func from(_ g: UnsafeMutableRawPointer, _ shape: Int) -> UnsafeMutablePointer<Int> {
    g.assumingMemoryBound(to: Int.self) + fromWords + shape
  }
  /// The handoff span's markFrom, from the address of the handoff word.
  @inline(__always) static func handoffFrom(_ handoff: UnsafeMutablePointer<SpanPtr?>) -> UnsafeMutablePointer<Int> {
    gcHandoffFrom(handoff)
  }
  @inline(__always) static func span(_ g: UnsafeMutableRawPointer, _ shape: Int) -> UnsafeMutablePointer<SpanPtr> {
    g.assumingMemoryBound(to: SpanPtr.self) + shape
  }
  @inline(__always) static func counter(_ g: UnsafeMutableRawPointer, _ i: Int) -> UnsafeMutablePointer<UInt64> {
    g.assumingMemoryBound(to: UInt64.self) + i
  }
  /// The span g holds while it moves between a slot and a list (nil: none). Written inside the
  /// critical section or under the span's central lock; read by the flip.
  @inline(__always) static func handoff(_ g: UnsafeMutableRawPointer) -> UnsafeMutablePointer<SpanPtr?> {
    (g + handoffWord * 8).assumingMemoryBound(to: SpanPtr?.self)
  }
  /// MSpan.owner of a span cached by g: never an mcache's tag (those are 64-aligned, | 0 or 1).
  @inline(__always) static func ownerTag(_ g: UnsafeMutableRawPointer) -> UInt { UInt(bitPattern: g) | 2 }
}

/// Every span the GC caches hold (world stopped, every lock held): each cache's slots but the
/// empty span, and its handoff word's span while it is between a slot and a list; with the word
/// that holds where the current mark began in it (concurrent marking's markFrom).
struct GCHeldSpans {
  let empty: SpanPtr
  var cache: UnsafeMutableRawPointer?
  var g: UnsafeMutableRawPointer? = nil
  var shape = numSizeClasses * 2
  init(_ h: UnsafeMutablePointer<MHeap>) {
    empty = h.pointee.emptySpan
    cache = h.pointee.caches.pointee.head
  }
  mutating func next() -> (span: SpanPtr, from: UnsafeMutablePointer<Int>)? {
    while true {
      if let g {
        if shape < numSizeClasses * 2 {
          let s = GCCache.span(g, shape).pointee, from = GCCache.from(g, shape)
          shape += 1
          if s != empty { return (s, from) }
          continue
        }
        self.g = nil
        let handoff = GCCache.handoff(g)
        if let s = handoff.pointee, s.pointee.collected != 0, s.pointee.list == listNone,
           atomicLoad32(&s.pointee.state) == spanInUse {
          return (s, GCCache.handoffFrom(handoff))
        }
      }
      guard let raw = cache else { return nil }
      let c = MCache(raw)
      cache = c.link.pointee.next
      g = c.header.pointee.gc
      shape = 0
    }
  }
}

nonisolated(unsafe) var gcInitLock: LockWord = 0
/// The GC state of the process-wide heap (the only heap the GC mode serves), once created.
nonisolated(unsafe) var gcStateWord: UInt = 0

extension UnsafeMutablePointer where Pointee == MHeap {
  /// The GC state, created on first use (nil when the OS refuses memory). Inline: every GC
  /// allocation asks (one load once it exists).
  @inline(__always) func gcState() -> UnsafeMutablePointer<GCState>? {
    if let g = gcExisting { return g }
    return gcCreateState()
  }

  @inline(never) func gcCreateState() -> UnsafeMutablePointer<GCState>? {
    lockAcquire(&gcInitLock)
    defer { lockRelease(&gcInitLock) }
    if let g = gcExisting { return g }
    let head = roundUp(MemoryLayout<GCState>.stride, 64)
    let rings = 2 * GCState.pauseRing * 8
    let roots = 2 * GCState.maxRoots * 8, images = 2 * GCState.maxImages * 8
    let spanQ = GCWork.spanCapacity * 8, largeQ = 2 * GCWork.chunkCapacity * 8
    let sets = numSizeClasses * 2 * 4 * 8
    let dirty = 2 * GCState.maxDirtyRanges * 8 * 2
    let workB = roundUp(MemoryLayout<GCWork>.stride, 64), workersB = roundUp(MemoryLayout<GCWorkers>.stride, 64)
    let markersB = (GCWork.maxWorkers + 1) * roundUp(MemoryLayout<GCMarker>.stride, 64)
    let bytes = roundUp(head + rings + roots + images + spanQ + largeQ + sets + dirty + workB + workersB + markersB
                        + GCWork.localBytes, 4096)
    guard let mem = sysMap(bytes) else { return nil }
    let g = mem.bindMemory(to: GCState.self, capacity: 1)
    var at = head
    let pauseNs = (mem + at).bindMemory(to: UInt64.self, capacity: GCState.pauseRing); at += GCState.pauseRing * 8
    let pauseEnd = (mem + at).bindMemory(to: UInt64.self, capacity: GCState.pauseRing); at += GCState.pauseRing * 8
    let r = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCState.maxRoots); at += roots
    let im = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCState.maxImages); at += images
    let sq = (mem + at).bindMemory(to: UInt.self, capacity: GCWork.spanCapacity); at += spanQ
    let lq = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCWork.chunkCapacity); at += largeQ
    let ss = (mem + at).bindMemory(to: SpanPtr?.self, capacity: numSizeClasses * 2 * 4); at += sets
    let dr = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCState.maxDirtyRanges); at += dirty / 2
    let dout = (mem + at).bindMemory(to: UInt.self, capacity: 2 * GCState.maxDirtyRanges); at += dirty / 2
    let wk = (mem + at).bindMemory(to: GCWork.self, capacity: 1); at += workB
    let wks = (mem + at).bindMemory(to: GCWorkers.self, capacity: 1); at += workersB
    let mk = (mem + at).bindMemory(to: GCMarker.self, capacity: GCWork.maxWorkers + 1); at += markersB
    let local = (mem + at).bindMemory(to: UInt.self, capacity: GCWork.localBytes / 8)
    wk.initialize(to: GCWork(spans: sq, chunks: lq, markers: mk, localMemory: local))
    wks.initialize(to: GCWorkers())
    wks.pointee.procs = Int(goalloc_gc_procs_from_env())
    g.initialize(to: GCState(pauseNs: pauseNs, pauseEnd: pauseEnd,
                             cachealloc: FixAlloc(size: GCCache.words * 8),
                             work: wk, workers: wks, roots: r, images: im, spanSets: ss,
                             dirtyRanges: dr, dirtyOut: dout))
    let flags = goalloc_debug_flags_from_env()
    g.pointee.trace = flags & UInt32(GOALLOC_DEBUG_GCTRACE) != 0
    g.pointee.logFD = gcOpenLog()
    g.pointee.work.pointee.objectQueue = flags & UInt32(GOALLOC_DEBUG_GC_OBJQUEUE) != 0
    g.pointee.conc = flags & UInt32(GOALLOC_DEBUG_GC_CONC) != 0
    g.pointee.checkmark = flags & UInt32(GOALLOC_DEBUG_GC_CHECKMARK) != 0
    g.pointee.concBroken = flags & UInt32(GOALLOC_DEBUG_GC_CONC_BROKEN) != 0
    g.pointee.preclean = flags & UInt32(GOALLOC_DEBUG_GC_PRECLEAN) != 0
    g.pointee.sweepMode = UInt32(goalloc_debug_gcsweep())
    g.pointee.percent = Int32(goalloc_gc_percent_from_env(100))
    g.pointee.memLimit = goalloc_memlimit_from_env()
    g.pointee.sys = UInt64(bytes)
    g.pointee.startNanos = goalloc_nanotime()
    g.pointee.runway = g.pointee.conc ? UInt64.max : 0  // (concurrent: none measured yet)
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
/// `boundarySP`: where this thread's stack scan starts, when the caller took it at the API's
/// boundary (its registers spilled above it); 0: where the cycle begins.
@discardableResult
func gcCollect(forced: Bool, boundarySP: UInt = 0) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcState() else { return 0 }
  if goalloc_gc_thread_self().pointee.busy != 0 || goalloc_in_signal_handler() != 0 {
    goalloc_write(2, "goalloc: gc: collection refused: called from a signal handler (not supported; the collector stops threads with a signal and takes the allocator's locks)\n")
    return gcRefused
  }
  // The calling thread is a root too: it must be registered (have a cache).
  guard currentCache() != nil else { return 0 }
  // A background cycle ended since (MGCConcurrent): the pools' turn, here (no lock held, a
  // thread with a cache).
  if atomicLoad32(&gc.pointee.poolPending) != 0 && atomicExchange32(&gc.pointee.poolPending, 0, acquire: true) != 0 {
    reportPoolEvent(h, PoolEvent.collected)
  }
  let seen = atomicLoad32(&gc.pointee.numGC)
  // A cycle marking beside the program (gcconc): the allocation trigger does not wait for it
  // (the allocating threads pay by assisting: MGCAssist). Once the heap reaches its goal the
  // allocation waits for the cycle to end (below: a stall, counted; the pacer then starts the
  // next cycle earlier).
  var stalled: UInt64 = 0
  if !forced && atomicLoad32(&gc.pointee.phase) != GCPhase.off.rawValue {
    if atomicLoad64(&gc.pointee.heapLive) < gc.gcHardGoalNow || gc.gcLimiting { return 0 }
    atomicAdd64(&gc.pointee.goalStalls, 1)  // (the pacer's: MGCConcurrent)
    stalled = goalloc_nanotime()
    gc.gcAssistUntilDone()
  }
  // The CPU limiter on: a cycle only the memory limit asks for waits for the program's turn.
  if !forced && gc.gcLimiting && gc.gcLimiterDefers() { return 0 }
  lockAcquire(&gc.pointee.lock)
  if stalled != 0 { gc.gcRecordStall(goalloc_nanotime() &- stalled) }
  if !forced && atomicLoad32(&gc.pointee.numGC) != seen {
    lockRelease(&gc.pointee.lock)
    return 0
  }
  if !forced && atomicLoad64(&gc.pointee.heapLive) < atomicLoad64(&gc.pointee.heapTrigger) {
    lockRelease(&gc.pointee.lock)
    return 0
  }
  if goalloc_gc_install(0) < 0 {
    lockRelease(&gc.pointee.lock)
    goalloc_write(2, "goalloc: gc: collection refused: cannot install the stop signal handler\n")
    return gcRefused
  }
  gc.pointee.forcedNext = forced
  gc.pointee.boundarySP = boundarySP
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_START))
  // Sweep termination, the world running: what the last cycle left unswept.
  gc.gcFinishSweep(h)
  gc.pointee.lastHeapStart = atomicLoad64(&gc.pointee.heapLive)
  // Before any lock: the loader's lock may be held by a thread about to be stopped.
  gc.pointee.nimages = min(GCState.maxImages, Int(goalloc_image_ranges(gc.pointee.images, Int32(GCState.maxImages))))
  // Mark workers, before any allocator lock (creating a thread may allocate).
  gc.pointee.markWorkers = gc.gcStartWorkers()
  // The caller's callee-saved registers go onto its stack; the cycle scans from below them.
  if gc.pointee.conc && !forced && gc.gcBackgroundStart() {
    // Stop 1 here, then the background thread marks beside the program, runs mark
    // termination, and releases the collector's lock (gcBackgroundMain).
    goalloc_gc_with_registers(gcConcStartEntry, UnsafeMutableRawPointer(gc))
    return 0
  }
  if gc.pointee.conc {
    goalloc_gc_with_registers(gcConcCycleEntry, UnsafeMutableRawPointer(gc))
  } else {
    goalloc_gc_with_registers(gcCycleEntry, UnsafeMutableRawPointer(gc))
  }
  gcCollectTail(h, gc, forced: forced)
  lockRelease(&gc.pointee.lock)
  // Pools: what they held goes to their victim caches, what those held is freed (Go 1.13's
  // victim rule). After the cycle, with no lock held: the pools free objects.
  reportPoolEvent(h, PoolEvent.collected)
  return 0
}

/// After a cycle, the collector's lock held: a forced cycle's sweep finished, the END event,
/// gctrace, the allocation trace's record.
func gcCollectTail(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, forced: Bool) {
  // Go's runtime.GC: the caller sees every unreachable object freed.
  if forced && gc.pointee.sweepMode == GCSweepMode.lazy.rawValue { gc.gcFinishSweep(h) }
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_END))
  if gc.pointee.trace { gcTraceLine(gc) }
  let n = UInt64(atomicLoad32(&gc.pointee.numGC))
  let ns = goalloc_nanotime() &- gc.pointee.startNanos, goal = atomicLoad64(&gc.pointee.heapGoal)
  let pause = gc.pointee.lastCyclePauseNs
  h.recordCollection(n, ns: ns, before: gc.pointee.lastHeapStart, after: gc.pointee.lastHeapEnd,
                     marked: gc.pointee.heapMarked, goal: goal, pauseNs: pause, forced: forced)
  if gc.pointee.logFD >= 0 {
    goalloc_write_gc_line(gc.pointee.logFD, n, ns, gc.pointee.lastHeapStart, gc.pointee.lastHeapEnd,
                          gc.pointee.heapMarked, goal, pause, forced ? 1 : 0)
  }
}

/// goalloc_gc_with_registers' callback: the cycle, with the caller's stack pointer.
func gcCycleEntry(_ arg: UnsafeMutableRawPointer?, _ sp: UInt) {
  guard let arg, let h = globalHeap() else { return }
  let gc = arg.assumingMemoryBound(to: GCState.self)
  gcCycle(h, gc, callerSP: gc.gcStackScanStart(sp))
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Where a cycle scans its own thread's stack from: the API boundary's sp when a forced
  /// collection took one (goGCCollect), else `sp`, the cycle's own.
  func gcStackScanStart(_ sp: UInt) -> UInt { pointee.boundarySP != 0 ? pointee.boundarySP : sp }
}

func gcCycle(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, callerSP: UInt) {
  let t0 = goalloc_nanotime()
  let cpu0 = goalloc_thread_cputime()
  let me = goalloc_gettid()
  gc.pointee.lastThreads = Int(gcStopTheWorld(h, me)) + 1
  gc.gcSweepAllLocked(h)  // (normally nothing: the caller swept before the stop)
  let t1 = goalloc_nanotime()
  atomicStore32(&gc.pointee.phase, GCPhase.mark.rawValue)
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_MARK_START))
  gc.gcMark(h, callerSP: callerSP, me: me, workers: gc.pointee.markWorkers)
  if gc.pointee.checkmark { gc.gcCheckmark(h, callerSP: callerSP, me: me) }
  gc.gcMarkSpecials(h)  // finalizers, cleanups, weak handles (MGCSpecialsMark.swift)
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_MARK_END))
  let t2 = goalloc_nanotime()
  gcReclaimAndStart(h, gc)
  let t3 = goalloc_nanotime()
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_POST_START_WORLD))
  gc.pointee.lastClock = (t1 - t0, t2 - t1, t3 - t2)
  let cpu1 = goalloc_thread_cputime()
  // The collecting thread's and the mark helpers' (they all finished: gcWaitWorkers).
  gc.pointee.lastCPU = (cpu1 > cpu0 ? cpu1 - cpu0 : 0) &+ atomicExchange64(&gc.pointee.workers.pointee.cpuNs, 0)
  gc.gcRecordPause(t3 - t0)
  gc.pointee.lastCyclePauseNs = t3 - t0
  gc.gcLimiterUpdate(concurrent: false)
  gc.gcCycleDone()
}

/// Every registered thread but `me` gets the stop signal (allocator locks held, and `first`
/// before them); returns when they have all stopped, with how many there were.
func gcStopTheWorld(_ h: UnsafeMutablePointer<MHeap>, _ me: Int, first: UnsafeMutablePointer<LockWord>? = nil) -> Int32 {
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_PRE_STOP_WORLD))
  if let first { lockAcquire(first) }  // (the caller releases it)
  h.lockAll()
  goalloc_gc_begin_stop()
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
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_POST_STOP_WORLD))
  return sent
}

/// The end of every cycle's last stop, after the mark: the flip, the pacer, then the world
/// restarts and the locks are released.
func gcReclaimAndStart(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>) {
  atomicStore32(&gc.pointee.phase, GCPhase.sweep.rawValue)
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_RECLAIM_START))
  var r = gcFlip(h, gc)
  atomicStore64(&gc.pointee.heapLive, r.live)
  gc.pointee.lastHeapEnd = r.live
  gc.gcMeasureNonHeap(h, collectedSpanBytes: r.spanBytes)
  gc.gcSetGoal(marked: r.marked)
  if gc.pointee.sweepMode == GCSweepMode.eager.rawValue {
    gc.gcSweepAllLocked(h)
    r.spanBytes = 0
  }
  gc.gcSetSweepPace()
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_RECLAIM_END))
  atomicStore32(&gc.pointee.phase, GCPhase.off.rawValue)
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_PRE_START_WORLD))
  goalloc_gc_start_world()
  h.unlockAll()
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// One pause into the ring (MemStats' PauseNs: a concurrent cycle records its two stops).
  func gcRecordPause(_ ns: UInt64) {
    let n = Int(pointee.numPauses)
    pointee.pauseNs[n % GCState.pauseRing] = ns
    pointee.pauseEnd[n % GCState.pauseRing] = goalloc_walltime()
    pointee.pauseTotalNs &+= ns
    atomicStore32(&pointee.numPauses, UInt32(truncatingIfNeeded: n + 1))
  }

  /// The cycle is over: counted (numGC last: gcCollect's callers wait on it).
  func gcCycleDone() {
    pointee.lastGC = goalloc_walltime()
    if pointee.forcedNext { pointee.numForcedGC &+= 1 }
    atomicStore32(&pointee.numGC, atomicLoad32(&pointee.numGC) &+ 1)
  }
}

/// The flip (MGCSweep), world stopped: sweepgen += 2, then every span a GC cache holds (its
/// slots, and its handoff word: a span between a slot and a list) is swept, so its thread
/// allocates from swept state on restart; everything else waits on the lists, unswept.
func gcFlip(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>) -> GCSweepResult {
  var r = gc.gcFlipSweepgen()
  var held = GCHeldSpans(h)
  while let (s, _) = held.next() { gc.sweepHeld(h, s, &r) }
  gc.gcFlipLists(&r)
  return r
}

/// GOALLOC_DEBUG=gclog=FILE: an allocation trace's header, then a `g` line per collection
/// (AllocTrace's format) written as it ends; `goalloc gc-timeline` draws it. -1: none.
func gcOpenLog() -> Int32 {
  var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
  return withUnsafeMutableBytes(of: &buf) { b -> Int32 in
    let s = b.baseAddress!.assumingMemoryBound(to: CChar.self)
    if goalloc_debug_value("gclog", s, b.count) == 0 { return -1 }
    let fd = openSettingOutput("gclog", s)
    if fd >= 0 { writeStatic(fd, "# goalloc allocfreetrace v1\n") }
    return fd
  }
}

/// GOALLOC_DEBUG=gctrace=1: the last cycle's line on stderr (after the cycle; collector lock).
func gcTraceLine(_ gc: UnsafeMutablePointer<GCState>) {
  var t = goalloc_gctrace()
  let since = goalloc_nanotime() &- gc.pointee.startNanos
  t.cycle = UInt64(atomicLoad32(&gc.pointee.numGC))
  t.since_ns = since
  t.percent = since > 0 ? gc.pointee.pauseTotalNs / (since / 100 + 1) : 0
  t.clock_ns = gc.pointee.lastClock
  t.cpu_ns = gc.pointee.lastCPU
  t.heap_start = gc.pointee.lastHeapStart
  t.heap_end = gc.pointee.lastHeapEnd
  t.heap_marked = gc.pointee.heapMarked
  t.goal = atomicLoad64(&gc.pointee.heapGoal)
  t.stacks = gc.pointee.stackBytes
  t.globals = gc.pointee.globalsBytes
  t.procs = UInt64(gc.pointee.lastThreads)
  t.forced = gc.pointee.forcedNext ? 1 : 0
  if gc.pointee.conc {
    t.conc = goalloc_dirty_name(gc.pointee.dirtyMode)
    t.dirty_pages = gc.pointee.lastDirtyPages
    t.cpu_split_ns = gc.pointee.lastCPUSplit
  }
  goalloc_write_gctrace(&t)
}

/// The scavenger's tick (Process.swift): the background sweeper's turn, once the GC mode runs.
func gcBackgroundSweepTick(_ h: UnsafeMutablePointer<MHeap>) {
  guard let gc = h.gcExisting else { return }
  gc.gcBackgroundSweep(h)
}

// MARK: threads

/// Hands a thread's GC cache back (thread exit, unregistration): its spans go to their
/// mcentrals, its counters to the heap, the cache to the GC state's allocator.
func gcReleaseCache(_ c: MCache) {
  guard let g = c.header.pointee.gc, let gc = c.heap.gcExisting else { return }
  let h = c.heap
  let handoff = GCCache.handoff(g)
  for i in 0..<(numSizeClasses * 2) {
    goalloc_gc_enter_busy()
    let slot = GCCache.span(g, i)
    let s = slot.pointee
    slot.pointee = h.pointee.emptySpan
    if s != h.pointee.emptySpan {
      handoff.pointee = s
      GCCache.handoffFrom(handoff).pointee = GCCache.from(g, i).pointee
    }
    goalloc_gc_leave_busy()
    if s != h.pointee.emptySpan { gcUncacheSpan(h, gc, handoff: handoff, s) }
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
  for i in 0..<(numSizeClasses * 2) {
    GCCache.span(g, i).pointee = h.pointee.emptySpan
    GCCache.from(g, i).pointee = 0
  }
  GCCache.handoff(g).pointee = nil
  GCCache.handoffFrom(GCCache.handoff(g)).pointee = 0
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
/// In a fork child, before the caches of threads that do not exist here are abandoned: the
/// spans their GC caches held go onto their full lists (never offered to a cache before a sweep
/// rebuilds their bitmaps: such a thread may have been anywhere in its critical section), so
/// every collected span is still swept before each mark. Locks are free again (afterForkChild).
func gcForkChildAdopt(_ h: UnsafeMutablePointer<MHeap>, _ c: MCache) {
  guard let gc = h.gcExisting, let g = c.header.pointee.gc else { return }
  let empty = h.pointee.emptySpan
  for i in 0..<(numSizeClasses * 2) {
    let slot = GCCache.span(g, i)
    let s = slot.pointee
    if s == empty { continue }
    slot.pointee = empty
    gcAdoptSpan(h, gc, s)
  }
  if let s = GCCache.handoff(g).pointee {
    GCCache.handoff(g).pointee = nil
    gcAdoptSpan(h, gc, s)
  }
}

/// gcForkChildAdopt's step for one span: onto its full list unless a list has it already.
func gcAdoptSpan(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, _ s: SpanPtr) {
  if s.pointee.collected == 0 || s.pointee.list != listNone || atomicLoad32(&s.pointee.state) != spanInUse { return }
  let central = gc.gcCentral(h, Int(s.pointee.spanclass))
  lockAcquire(&central.pointee.lock)
  atomicStoreRelaxedUInt(&s.pointee.owner, 0)
  atomicStore32(&s.pointee.sweepgen, gc.pointee.sweepgen)
  gc.gcListPush(s, full: true)
  lockRelease(&central.pointee.lock)
}

func gcForkChild(_ h: UnsafeMutablePointer<MHeap>) {
  if let gc = h.gcExisting {
    lockReset(&gc.pointee.lock)
    // (A barrier that read its flag during the last cycle may have held wbLock at the fork.)
    lockReset(&gc.pointee.work.pointee.wbLock)
    goalloc_gc_barrier_store(0)
    gc.gcWorkersAfterFork()
    gc.pointee.dirtyMode = -1
    _ = atomicAdd32(&gc.pointee.bgCrew, 1)  // (no background thread here)
    gc.pointee.bgStarted = false
    atomicStore32(&gc.pointee.bgWord, 0)
  }
  lockReset(&gcInitLock)
  goalloc_gc_after_fork_child()
  goalloc_dirty_after_fork_child()
  specialsForkChild()
}

// MARK: the API's core (MallocGC.swift has allocation and free)

/// goalloc_gc_collect: a forced collection. 0, or -1 when refused (signal handler). The
/// caller's registers are spilled and its stack pointer taken here, at the API's boundary: the
/// cycle scans this thread's stack from there, so the collector's own frames below it (whose
/// unused slots may hold pointers left by earlier calls) are never roots.
public func goGCCollect() -> Int32 {
  var r: Int32 = 0
  withUnsafeMutablePointer(to: &r) { goalloc_gc_with_registers(gcForcedEntry, UnsafeMutableRawPointer($0)) }
  return r
}

func gcForcedEntry(_ arg: UnsafeMutableRawPointer?, _ sp: UInt) {
  arg?.assumingMemoryBound(to: Int32.self).pointee = gcCollect(forced: true, boundarySP: sp)
}

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
  // The whole heap's limit, as GOALLOC_MEMLIMIT sets it: the malloc side releases memory near it.
  let sc = h.pointee.scavenger
  lockAcquire(&sc.pointee.lock)
  atomicStore64(&sc.pointee.memLimit, bytes)
  lockRelease(&sc.pointee.lock)
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

/// MemStats' gc_conc for a dirty-page mechanism (goalloc.h: 1 uffd, 2 soft-dirty, 3 full,
/// 4 barrier, 5 mprotect); 0 before one is chosen.
func gcConcStat(_ mode: Int32) -> UInt64 {
  switch mode {
  case Int32(GOALLOC_DIRTY_UFFD): return 1
  case Int32(GOALLOC_DIRTY_SOFTDIRTY): return 2
  case Int32(GOALLOC_DIRTY_FULL): return 3
  case Int32(GOALLOC_DIRTY_BARRIER): return 4
  case Int32(GOALLOC_DIRTY_MPROTECT): return 5
  default: return 0
  }
}

/// The GC figures of MemStats (caches lock and heap lock held by the caller). Only the
/// process's heap has them (a private heap's MemStats, in tests, leaves them out).
func gcAddStats(_ h: UnsafeMutablePointer<MHeap>, _ m: inout MemStats) {
  guard let gc = h.gcExisting, h == globalHeap() else { return }
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
  m.gcUnsweptSpans = atomicLoad64(&gc.pointee.unswept)
  m.nextGC = atomicLoad64(&gc.pointee.heapGoal)
  m.numGC = atomicLoad32(&gc.pointee.numGC)
  m.numForcedGC = gc.pointee.numForcedGC
  m.numPauses = atomicLoad32(&gc.pointee.numPauses)
  if gc.pointee.conc {
    m.gcConc = gcConcStat(gc.pointee.dirtyMode)
    m.gcDirtyPages = gc.pointee.lastDirtyPages
    m.gcAssists = gc.pointee.totalAssists.count &+ atomicLoad64(&gc.pointee.assistCount)
    m.gcAssistNs = gc.pointee.totalAssists.ns &+ atomicLoad64(&gc.pointee.assistNs)
    m.gcAssistBytes = gc.pointee.totalAssists.bytes &+ atomicLoad64(&gc.pointee.assistBytes)
    m.gcStalls = atomicLoad64(&gc.pointee.stalls)
    m.gcStallNs = atomicLoad64(&gc.pointee.stallNs)
    m.gcStallMaxNs = atomicLoad64(&gc.pointee.stallMaxNs)
  }
  m.gcLimitedCycles = gc.pointee.limitedCycles
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
