// MemStats: Go's runtime.MemStats for GoAlloc, read without stopping anyone.
//
// Counters: each mcache counts its own mallocs and frees per size class (plain adds by the
// owner, published atomically), and the large objects its LargeBins served; dead caches flush
// into the heap; other large objects and frees by cacheless threads use atomics. Large spans
// in the threads' bins are idle (HeapIdle), though in use for the page heap. A snapshot sums the live caches and reads the page counts while
// holding the caches lock and the heap lock (allocation from existing spans goes on), so:
//   HeapIdle + HeapInuse == HeapSys   (one heap-lock critical section)
//   HeapObjects == Mallocs - Frees    (by construction)
//   HeapAlloc <= HeapInuse            (no span comes or goes during the read)
// Allocation continues while a snapshot is taken; a snapshot may miss allocations made while it
// runs, never double-count them.
//
// Address space is not memory: arenas are mapped 64 MiB at a time and some metadata tables
// (the arena index, the page -> span table) are mapped whole and touched sparsely. `SysReserved`
// is all of that address space; `Sys` is the part obtained as memory, which can be resident:
// heap pages not released (HeapSys - HeapReleased; pages never touched count as released) and the
// metadata in use (MSpanSys, MCacheSys, OtherSys, where the arena index counts one page per
// arena). Go's Sys counts released heap pages too; here they are only in SysReserved.
//
// At exit (GOALLOC_DEBUG=stats=1) or on request, `write` prints one block, headed by the
// process's pid and command line, with one write: blocks of processes that exit together do not
// interleave. GC fields (NextGC, NumGC, NumForcedGC, PauseTotalNs, LastGC, GCSys, GCMallocs,
// GCFrees, GCHeapLive, PauseNs: the last pause) are left out until the GC mode is used.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

public struct MemStats {
  public var alloc: UInt64 = 0         // bytes of allocated heap objects (= heapAlloc)
  public var totalAlloc: UInt64 = 0    // cumulative bytes allocated
  public var sys: UInt64 = 0           // bytes of memory obtained from the OS (heap + metadata)
  public var sysReserved: UInt64 = 0   // bytes of address space mapped (Sys and what is untouched)
  public var mallocs: UInt64 = 0
  public var frees: UInt64 = 0
  public var heapAlloc: UInt64 = 0
  public var heapSys: UInt64 = 0
  public var heapIdle: UInt64 = 0
  public var heapInuse: UInt64 = 0
  public var heapReleased: UInt64 = 0
  public var heapObjects: UInt64 = 0
  public var mspanInuse: UInt64 = 0
  public var mspanSys: UInt64 = 0
  public var mcacheInuse: UInt64 = 0
  public var mcacheSys: UInt64 = 0
  public var otherSys: UInt64 = 0      // arena index (in use), page-allocator and other metadata
  public var largeAllocs: UInt64 = 0
  public var largeFrees: UInt64 = 0
  public var tinyAllocs: UInt64 = 0
  public var badFrees: UInt64 = 0
  public var numThreadCaches: UInt64 = 0
  public var spansInUse: UInt64 = 0
  /// Estimated bytes lost to size-class rounding in live small objects.
  public var roundingWaste: UInt64 = 0
  // GC fields (Go's; MGC.swift); zero until the GC mode is used. Mallocs, Frees, HeapAlloc,
  // HeapObjects and TotalAlloc count collected objects too.
  public var nextGC: UInt64 = 0        // the heap goal (bytes of collected objects)
  public var lastGC: UInt64 = 0        // end of the last cycle, ns since 1970
  public var pauseTotalNs: UInt64 = 0
  public var numGC: UInt32 = 0
  public var numForcedGC: UInt32 = 0
  public var gcCPUFraction: Double = 0 // pauses / time since the GC mode started
  public var gcSys: UInt64 = 0         // the collector's own metadata
  public var gcMallocs: UInt64 = 0     // collected objects allocated
  public var gcFrees: UInt64 = 0       // collected objects freed (by sweeps, or explicitly)
  public var gcHeapLive: UInt64 = 0    // the pacer's heapLive
  public var gcUnsweptSpans: UInt64 = 0  // collected spans the lazy sweep has not reached yet
  /// Pauses recorded in the rings: one per cycle with the world stopped for the mark, two per
  /// concurrent cycle (gcconc=1: its stop 1 and its mark termination, in that order).
  public var numPauses: UInt32 = 0
  /// Concurrent marking: 0 off, else how written pointers are found (1 uffd, 2 softdirty, 3 full
  /// re-mark: none available; MGCDirty; 4 barrier: the program's write barrier, MGCBarrier;
  /// 5 mprotect: read-only pages and a SIGSEGV handler).
  public var gcConc: UInt64 = 0
  public var gcDirtyPages: UInt64 = 0  // pages rescanned at the last mark termination
  /// Concurrent marking's mark assists (MGCAssist), since the GC mode started: how many marked,
  /// the time they took and the bytes they marked.
  public var gcAssists: UInt64 = 0
  public var gcAssistNs: UInt64 = 0
  public var gcAssistBytes: UInt64 = 0
  /// Allocations that found the heap at its goal while a concurrent mark ran, and waited for it.
  public var gcStalls: UInt64 = 0
  /// The time those allocations waited, in all and the longest single wait.
  public var gcStallNs: UInt64 = 0
  public var gcStallMaxNs: UInt64 = 0
  /// Cycles that ended with the GC CPU limiter on (MGCLimiter: the collector took over half the
  /// CPU for about a second, and the memory limit yielded).
  public var gcLimitedCycles: UInt64 = 0
  /// The last 256 pauses (ns) and their ends (ns since 1970): pause k (from 1) at [(k - 1) % 256];
  /// with the world stopped for the mark, pause k is cycle k's.
  public var pauseNs = InlineArray<256, UInt64>(repeating: 0)
  public var pauseEnd = InlineArray<256, UInt64>(repeating: 0)

  public init() {}

  /// A snapshot of heap `h`. `bySize`, when given, receives 68 (mallocs, frees) pairs.
  public static func read(_ h: UnsafeMutablePointer<MHeap>,
                          bySize: UnsafeMutablePointer<(UInt64, UInt64)>? = nil) -> MemStats {
    var m = MemStats()
    var sums = (mallocs: UInt64(0), frees: UInt64(0), allocBytes: UInt64(0), freeBytes: UInt64(0))
    // Both locks for the whole read (in the fork handler's order: caches, then heap): no span is
    // created or freed meanwhile, so every object counted live sits in a span counted in use
    // (HeapAlloc <= HeapInuse), while allocation from existing spans goes on.
    let list = h.pointee.caches
    lockAcquire(&list.pointee.lock)
    lockAcquire(&h.pointee.lock)
    var tiny = (objs: UInt64(0), frees: UInt64(0), blocks: UInt64(0), blockFrees: UInt64(0))
    var liveRequested = 0.0
    for sc in 0..<numStatClasses {
      let scan = SpanClass(sizeclass: sc, noscan: false), noscan = SpanClass(sizeclass: sc, noscan: true)
      let counted = counterSum(h, list, MCache.mallocsIdx(scan)) &+ counterSum(h, list, MCache.mallocsIdx(noscan))
      let flow = listFlowSum(list, scan), flowNoscan = listFlowSum(list, noscan)
      let mallocs = counted &+ flow.pops &+ flowNoscan.pops
      // (Another thread's list may move between the reads of its room and its pushes, so a pop
      // can be missed for an instant: a class never shows more frees than mallocs.)
      let frees = min(mallocs, counterSum(h, list, MCache.freesIdx(scan)) &+ counterSum(h, list, MCache.freesIdx(noscan))
        &+ flow.pushes &+ flowNoscan.pushes)
      // Requested bytes are counted by the mallocs that the lists do not serve: the pops are
      // taken at their average.
      var requested = counterSum(h, list, MCache.requestedIdx(scan)) &+ counterSum(h, list, MCache.requestedIdx(noscan))
      if counted > 0 { requested = UInt64(Double(requested) / Double(counted) * Double(mallocs)) }
      sums.mallocs &+= mallocs
      sums.allocBytes &+= mallocs &* UInt64(classSize(sc))
      sums.frees &+= frees
      sums.freeBytes &+= frees &* UInt64(classSize(sc))
      bySize?[sc] = (mallocs, frees)
      // The rounding of the live objects is estimated from the class's average request (frees
      // do not know the request).
      let m = Double(mallocs), f = Double(frees)
      if m > 0 && m > f { liveRequested += Double(requested) * (m - f) / m }
    }
    tiny.objs = counterSum(h, list, MCache.tinyAllocsIdx)
    tiny.frees = counterSum(h, list, MCache.tinyFreesIdx)
    tiny.blocks = counterSum(h, list, MCache.tinyBlockAllocsIdx)
    tiny.blockFrees = counterSum(h, list, MCache.tinyBlockFreesIdx)
    m.numThreadCaches = UInt64(list.pointee.count)

    // Large objects: the heap's counters and those of the threads' LargeBins, mallocs before
    // frees (so that a free is never counted without its malloc's pages: see LargeBins).
    let lah = atomicLoad64(&h.pointee.largeAllocs), labh = atomicLoad64(&h.pointee.largeAllocBytes)
    let bins = LargeBins.totals(list)
    let la = lah &+ bins.allocs, lab = labh &+ bins.allocBytes
    let lf = atomicLoad64(&h.pointee.largeFrees) &+ bins.frees
    let lfb = atomicLoad64(&h.pointee.largeFreeBytes) &+ bins.freeBytes
    m.largeAllocs = la
    m.largeFrees = lf
    m.tinyAllocs = tiny.objs
    m.badFrees = atomicLoad64(&h.pointee.badFrees)
    m.mallocs = sums.mallocs &+ tiny.objs &+ la
    m.frees = sums.frees &+ tiny.frees &+ lf
    if m.frees > m.mallocs { m.frees = m.mallocs }  // a free counted before its malloc
    m.heapObjects = m.mallocs - m.frees
    let tinyBytes = UInt64(tinySize)
    m.totalAlloc = sums.allocBytes &+ tiny.blocks &* tinyBytes &+ lab
    let freed = sums.freeBytes &+ tiny.blockFrees &* tinyBytes &+ lfb
    m.heapAlloc = m.totalAlloc > freed ? m.totalAlloc - freed : 0
    m.alloc = m.heapAlloc

    let pa = h.pointee.pages
    m.heapSys = UInt64(pa.totalPages * pageSize)
    // Spans in the threads' LargeBins are in use as far as the heap knows: they count as idle.
    let binned = max(0, min(Int(truncatingIfNeeded: bins.binnedPages), h.pointee.pagesInUse))
    m.heapInuse = UInt64((h.pointee.pagesInUse - binned) * pageSize)
    m.heapIdle = UInt64((pa.freePages + h.pointee.largeCachedPages + binned) * pageSize)
    m.heapReleased = UInt64(pa.scavPages * pageSize)
    m.spansInUse = UInt64(h.pointee.spansInUse - max(0, min(Int(truncatingIfNeeded: bins.binnedSpans), h.pointee.spansInUse)))
    m.mspanInuse = UInt64(h.pointee.spanalloc.inuse)
    m.mspanSys = UInt64(h.pointee.spanalloc.sys)
    m.mcacheInuse = UInt64(h.pointee.cachealloc.inuse)
    m.mcacheSys = UInt64(h.pointee.cachealloc.sys)
    var bitsSys = h.pointee.tinyalloc.sys
    for o in 0..<bitsOrders { bitsSys += h.pointee.bitsalloc[o].sys }
    let persistentOther = h.pointee.persistent.sys - Int(m.mspanSys) - Int(m.mcacheSys) - bitsSys
      - h.pointee.arenaMetaSys  // (the arena index's level-2 blocks are in persistentOther)
    m.otherSys = UInt64(max(0, persistentOther) + bitsSys + h.pointee.arenaMetaSys + pa.sys
      + arenaL1Entries * MemoryLayout<ArenaL2?>.stride)
    gcAddStats(h, &m)
    lockRelease(&h.pointee.lock)
    lockRelease(&list.pointee.lock)
    m.sys = (m.heapSys - m.heapReleased) &+ m.mspanSys &+ m.mcacheSys &+ m.otherSys
    // Reserved: all heap pages and metadata, and the mapped part of the page -> span table.
    let spanTable = UInt64(goalloc_span_table_bytes())
    m.sysReserved = m.heapSys &+ m.mspanSys &+ m.mcacheSys &+ m.otherSys &+ spanTable
    let smallLive = sums.allocBytes > sums.freeBytes ? sums.allocBytes - sums.freeBytes : 0
    m.roundingWaste = smallLive > UInt64(liveRequested) ? smallLive - UInt64(liveRequested) : 0
    return m
  }

  /// The lists' flow of span class spc in the live caches (MCache.listFlow).
  static func listFlowSum(_ list: UnsafeMutablePointer<CacheList>, _ spc: SpanClass) -> (pops: UInt64, pushes: UInt64) {
    var v: (pops: UInt64, pushes: UInt64) = (0, 0)
    var it = list.pointee.head
    while let raw = it {
      let c = MCache(raw)
      let f = c.listFlow(spc)
      v.pops &+= f.pops
      v.pushes &+= f.pushes
      it = c.link.pointee.next
    }
    return v
  }

  static func counterSum(_ h: UnsafeMutablePointer<MHeap>, _ list: UnsafeMutablePointer<CacheList>,
                         _ i: Int) -> UInt64 {
    var v = h.pointee.flushed[i] &+ atomicLoadRelaxed64(h.pointee.globalFrees + i)
    var it = list.pointee.head
    while let raw = it {
      let c = MCache(raw)
      v &+= atomicLoadRelaxed64(c.counters + i)
      it = c.link.pointee.next
    }
    return v
  }


  /// Stores the fields in the order of `struct goalloc_memstats` (include/goalloc.h).
  public func store(to out: UnsafeMutablePointer<UInt64>) {
    let v = (alloc, totalAlloc, sys, mallocs, frees, heapAlloc, heapSys, heapIdle, heapInuse,
             heapReleased, heapObjects, mspanInuse, mspanSys, mcacheInuse, mcacheSys, otherSys,
             largeAllocs, largeFrees, tinyAllocs, badFrees, numThreadCaches, spansInUse,
             roundingWaste, nextGC, UInt64(numGC), pauseTotalNs, sysReserved)
    withUnsafeBytes(of: v) { b in
      UnsafeMutableRawPointer(out).copyMemory(from: b.baseAddress!, byteCount: b.count)
    }
    let gc = (UInt64(numForcedGC), lastGC, gcSys, gcMallocs, gcFrees, gcHeapLive,
              UInt64(gcCPUFraction * 1_000_000))
    withUnsafeBytes(of: gc) { b in
      UnsafeMutableRawPointer(out + 27).copyMemory(from: b.baseAddress!, byteCount: b.count)
    }
    let conc = (UInt64(numPauses), gcConc, gcDirtyPages, gcAssists, gcAssistNs, gcAssistBytes, gcStalls, gcLimitedCycles,
                gcStallNs, gcStallMaxNs)
    withUnsafeBytes(of: conc) { b in
      UnsafeMutableRawPointer(out + 34).copyMemory(from: b.baseAddress!, byteCount: b.count)
    }
  }

  /// Writes the snapshot to fd with one write, with no allocation:
  ///   goalloc: MemStats of pid <pid> (<command line>)[ at exit]
  ///   goalloc: <Name> <value>            (one line per field; GC fields once a GC has run)
  public func write(to fd: Int32, atExit: Bool = false) {
    var block = (stats: self, atExit: atExit)
    withUnsafeMutablePointer(to: &block) { p in
      goalloc_text_write_block(fd, fillMemStatsBlock, UnsafeMutableRawPointer(p))
    }
  }
}

/// The text of `MemStats.write` (a plain function: the C side calls it with the block on its stack).
func fillMemStatsBlock(_ t: UnsafeMutablePointer<goalloc_text>?, _ context: UnsafeMutableRawPointer?) {
  guard let t, let context else { return }
  let block = context.assumingMemoryBound(to: (stats: MemStats, atExit: Bool).self).pointee
  let m = block.stats
  textStatic(t, "goalloc: MemStats of ")
  goalloc_text_process(t)
  textStatic(t, block.atExit ? " at exit\n" : "\n")
  statLine(t, "Alloc", m.alloc); statLine(t, "TotalAlloc", m.totalAlloc)
  statLine(t, "Sys", m.sys); statLine(t, "SysReserved", m.sysReserved)
  statLine(t, "Mallocs", m.mallocs); statLine(t, "Frees", m.frees)
  statLine(t, "HeapAlloc", m.heapAlloc); statLine(t, "HeapSys", m.heapSys); statLine(t, "HeapIdle", m.heapIdle)
  statLine(t, "HeapInuse", m.heapInuse); statLine(t, "HeapReleased", m.heapReleased)
  statLine(t, "HeapObjects", m.heapObjects)
  statLine(t, "MSpanInuse", m.mspanInuse); statLine(t, "MSpanSys", m.mspanSys)
  statLine(t, "MCacheInuse", m.mcacheInuse); statLine(t, "MCacheSys", m.mcacheSys); statLine(t, "OtherSys", m.otherSys)
  statLine(t, "LargeAllocs", m.largeAllocs); statLine(t, "LargeFrees", m.largeFrees); statLine(t, "TinyAllocs", m.tinyAllocs)
  statLine(t, "BadFrees", m.badFrees); statLine(t, "ThreadCaches", m.numThreadCaches)
  statLine(t, "SpansInUse", m.spansInUse); statLine(t, "RoundingWaste", m.roundingWaste)
  if m.numGC > 0 || m.gcMallocs > 0 {
    statLine(t, "NextGC", m.nextGC); statLine(t, "NumGC", UInt64(m.numGC)); statLine(t, "NumForcedGC", UInt64(m.numForcedGC))
    statLine(t, "PauseTotalNs", m.pauseTotalNs); statLine(t, "LastGC", m.lastGC); statLine(t, "GCSys", m.gcSys)
    statLine(t, "GCMallocs", m.gcMallocs); statLine(t, "GCFrees", m.gcFrees); statLine(t, "GCHeapLive", m.gcHeapLive)
    if m.numPauses > 0 {
      let last = Int(m.numPauses - 1) % 256
      statLine(t, "PauseNs", m.pauseNs[last])  // the last pause
    }
    if m.gcLimitedCycles > 0 { statLine(t, "GCLimitedCycles", m.gcLimitedCycles) }
    if m.gcConc > 0 {
      statLine(t, "GCConcurrent", m.gcConc); statLine(t, "GCDirtyPages", m.gcDirtyPages)
      statLine(t, "GCAssists", m.gcAssists); statLine(t, "GCAssistNs", m.gcAssistNs); statLine(t, "GCAssistBytes", m.gcAssistBytes)
      statLine(t, "GCStalls", m.gcStalls); statLine(t, "GCStallNs", m.gcStallNs); statLine(t, "GCStallMaxNs", m.gcStallMaxNs)
    }
  }
}

/// "goalloc: <name> <v>\n" onto t.
func statLine(_ t: UnsafeMutablePointer<goalloc_text>, _ name: StaticString, _ v: UInt64) {
  textStatic(t, "goalloc: ")
  textStatic(t, name)
  textStatic(t, " ")
  goalloc_text_u64(t, v)
  textStatic(t, "\n")
}

func textStatic(_ t: UnsafeMutablePointer<goalloc_text>, _ s: StaticString) {
  s.withUTF8Buffer { b in
    goalloc_text_put(t, UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self), b.count)
  }
}

/// A MemStats snapshot of the process-wide heap.
public func goReadMemStats() -> MemStats {
  guard let h = globalHeap() else { return MemStats() }
  return MemStats.read(h)
}
