// MemStats: Go's runtime.MemStats for GoAlloc, read without stopping anyone.
//
// Counters: each mcache counts its own mallocs and frees per size class (plain adds by the
// owner, published atomically); dead caches flush into the heap; large objects and frees by
// cacheless threads use atomics. A snapshot sums the live caches and reads the page counts while
// holding the caches lock and the heap lock (allocation from existing spans goes on), so:
//   HeapIdle + HeapInuse == HeapSys   (one heap-lock critical section)
//   HeapObjects == Mallocs - Frees    (by construction)
//   HeapAlloc <= HeapInuse            (no span comes or goes during the read)
// Allocation continues while a snapshot is taken; a snapshot may miss allocations made while it
// runs, never double-count them.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

public struct MemStats {
  public var alloc: UInt64 = 0         // bytes of allocated heap objects (= heapAlloc)
  public var totalAlloc: UInt64 = 0    // cumulative bytes allocated
  public var sys: UInt64 = 0           // bytes obtained from the OS (heap + metadata)
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
  public var otherSys: UInt64 = 0      // arena index, page-allocator and other metadata
  public var largeAllocs: UInt64 = 0
  public var largeFrees: UInt64 = 0
  public var tinyAllocs: UInt64 = 0
  public var badFrees: UInt64 = 0
  public var numThreadCaches: UInt64 = 0
  public var spansInUse: UInt64 = 0
  /// Estimated bytes lost to size-class rounding in live small objects.
  public var roundingWaste: UInt64 = 0
  // GC fields (Go's), kept for the GC mode; zero while only explicit free is used.
  public var nextGC: UInt64 = 0
  public var lastGC: UInt64 = 0
  public var pauseTotalNs: UInt64 = 0
  public var numGC: UInt32 = 0
  public var numForcedGC: UInt32 = 0
  public var gcCPUFraction: Double = 0

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
      let mallocs = counterSum(h, list, MCache.mallocsIdx(scan)) &+ counterSum(h, list, MCache.mallocsIdx(noscan))
      let frees = counterSum(h, list, MCache.freesIdx(scan)) &+ counterSum(h, list, MCache.freesIdx(noscan))
      let requested = counterSum(h, list, MCache.requestedIdx(scan)) &+ counterSum(h, list, MCache.requestedIdx(noscan))
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

    let la = atomicLoad64(&h.pointee.largeAllocs), lf = atomicLoad64(&h.pointee.largeFrees)
    let lab = atomicLoad64(&h.pointee.largeAllocBytes), lfb = atomicLoad64(&h.pointee.largeFreeBytes)
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
    m.heapInuse = UInt64(h.pointee.pagesInUse * pageSize)
    m.heapIdle = UInt64((pa.freePages + h.pointee.largeCachedPages) * pageSize)
    m.heapReleased = UInt64(pa.scavPages * pageSize)
    m.spansInUse = UInt64(h.pointee.spansInUse)
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
    lockRelease(&h.pointee.lock)
    lockRelease(&list.pointee.lock)
    m.sys = m.heapSys &+ m.mspanSys &+ m.mcacheSys &+ m.otherSys
    let smallLive = sums.allocBytes > sums.freeBytes ? sums.allocBytes - sums.freeBytes : 0
    m.roundingWaste = smallLive > UInt64(liveRequested) ? smallLive - UInt64(liveRequested) : 0
    return m
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
             roundingWaste, nextGC, UInt64(numGC), pauseTotalNs)
    withUnsafeBytes(of: v) { b in
      UnsafeMutableRawPointer(out).copyMemory(from: b.baseAddress!, byteCount: b.count)
    }
  }

  /// Writes the snapshot to fd as "goalloc: Name value" lines, with no allocation.
  public func write(to fd: Int32) {
    func line(_ name: StaticString, _ v: UInt64) {
      writeStatic(fd, "goalloc: ")
      writeStatic(fd, name)
      writeStatic(fd, " ")
      goalloc_write_u64(fd, v)
      writeStatic(fd, "\n")
    }
    line("Alloc", alloc); line("TotalAlloc", totalAlloc); line("Sys", sys)
    line("Mallocs", mallocs); line("Frees", frees)
    line("HeapAlloc", heapAlloc); line("HeapSys", heapSys); line("HeapIdle", heapIdle)
    line("HeapInuse", heapInuse); line("HeapReleased", heapReleased); line("HeapObjects", heapObjects)
    line("MSpanInuse", mspanInuse); line("MSpanSys", mspanSys)
    line("MCacheInuse", mcacheInuse); line("MCacheSys", mcacheSys); line("OtherSys", otherSys)
    line("LargeAllocs", largeAllocs); line("LargeFrees", largeFrees); line("TinyAllocs", tinyAllocs)
    line("BadFrees", badFrees); line("ThreadCaches", numThreadCaches); line("SpansInUse", spansInUse)
    line("RoundingWaste", roundingWaste)
    line("NextGC", nextGC); line("NumGC", UInt64(numGC)); line("PauseTotalNs", pauseTotalNs)
  }
}

/// A MemStats snapshot of the process-wide heap.
public func goReadMemStats() -> MemStats {
  guard let h = globalHeap() else { return MemStats() }
  return MemStats.read(h)
}
