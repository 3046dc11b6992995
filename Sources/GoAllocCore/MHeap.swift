// MHeap: the page heap (Go's mheap). Owns the arenas, the arena index, the page allocator,
// the mcentrals and every metadata allocator; hands out spans of whole pages.
//
// `allocSpan` takes a run of pages from PageAlloc (growing the heap when nothing fits, after first
// reclaiming empty spans), dresses it as an mspan and publishes it in the arena index;
// `freeSpan` undoes that and gives the pages back, where they merge with free neighbours. Small
// spans come to the mheap only through an mcentral; large objects (> 32 KiB) come straight here
// unless the thread's LargeBins (spans of up to 256 KiB, per thread, tier 5) has one of their
// page count, and a freed one may wait in those bins or in the LargeCache for a request of its
// size. Binned spans stay in use as far as the heap knows (pagesInUse, the span table);
// `binThief`, installed by the heap's first cache, lets this tier and the mcentrals take every
// thread's bins back (a scavenge, the memory limit, a heap about to grow).
//
// Growing: the heap maps fresh memory in steps of a quarter of its size (4 MiB to 64 MiB, or what
// a request needs), contiguously above its random base (HeapAddress), and asks for exactly what it
// needs when the kernel refuses a step, so a process under an address-space limit can use nearly
// all of it. Metadata grows with the heap: the arena index and the page allocator's tables are
// mapped in proportion to the address range the heap spans. A span of an alignment above 64 MiB
// gets memory of exactly its size at its alignment (`growAligned`): nothing is trimmed, nothing
// of the alignment stays mapped.
//
// Locking: `lock` (the heap lock) is taken only to grow, to hand out or take back pages, and for
// the metadata allocators; never while holding it do we take an mcentral lock. `caches.lock`
// guards the list of live mcaches and the counters flushed from dead ones.
//
// Invariants: HeapIdle + HeapInuse == HeapSys (pages are in exactly one span or free);
// pagesInUse == sum of npages over in-use (and binned) spans; every in-use span's pages map to
// it in the arena index.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// Counters of one mcache, by size class (flushed into the heap when the cache dies).
let numStatClasses = numSizeClasses
let bitsOrders = 5   // span bitmaps of 1, 2, 4, 8, 16 words

public struct MHeap {
  // Swift's access instrumentation (TSan) records a struct's accesses at its first byte: keep
  // atomically used words off offset 0.
  var _first: UInt64 = 0
  var lock: LockWord = 0
  var arenas: ArenaIndex
  var pages: PageAlloc
  var centrals: UnsafeMutablePointer<MCentral>
  var emptySpan: SpanPtr
  var persistent = PersistentAlloc()
  var spanalloc: FixAlloc
  var cachealloc: FixAlloc
  var tinyalloc: FixAlloc                        // tiny spans' bitmaps and per-block counts
  var bitsalloc: UnsafeMutablePointer<FixAlloc>  // [bitsOrders]
  var caches: UnsafeMutablePointer<CacheList>    // live mcaches (their own lock)
  var scavenger: UnsafeMutablePointer<ScavengerState>  // (its own lock)
  var instrumentation: UnsafeMutablePointer<Instrumentation>  // traces and heap profile
  var debugFlags: UInt32 = 0                     // atomic: GOALLOC_DEBUG flags
  /// GOALLOC_DEBUG=check=1: run by a cache's refill every 256 refills (argument: the cache).
  var periodicCheck: (@convention(c) (UnsafeMutableRawPointer) -> Void)? = nil
  // Statistics (heap lock unless noted).
  var pagesInUse = 0
  var spansInUse = 0
  var arenaBytes = 0                              // HeapSys
  var arenaMetaSys = 0                            // arenas' spans tables
  var ranges: UnsafeMutablePointer<HeapRange>? = nil  // the heap's memory (HeapArena), by address
  var rootSpansSeen: UInt32 = 0                   // atomic: 1 once a malloc span of a scan class exists
  var flushed: UnsafeMutablePointer<UInt64>       // dead caches' counters (caches lock)
  var largeAllocs: UInt64 = 0                     // atomics
  var largeFrees: UInt64 = 0
  var largeAllocBytes: UInt64 = 0
  var largeFreeBytes: UInt64 = 0
  var badFrees: UInt64 = 0
  var globalFrees: UnsafeMutablePointer<UInt64>   // frees by threads with no cache (atomics)
  var freeKey: UInt = 0                           // FreeList: word 1 of every listed object
  var largeSlots: UnsafeMutablePointer<SpanPtr?>  // LargeCache: [largeCacheSlots], oldest first
  var largeCached = 0
  var largeCachedPages = 0
  var secure: UInt32 = 0                          // atomic: GOALLOC_SECURE=1 (SecureMode.swift)
  /// Takes the threads' LargeBins back to the page heap (argument: this heap; idle caches only?);
  /// returns the pages. Installed by the heap's first MCache (set once, under the heap lock).
  var binThief: (@convention(c) (UnsafeMutableRawPointer, Bool) -> Int)? = nil
  /// The pools' handler of the heap's events (PoolEvent; argument: the cache for `cacheGone`),
  /// installed by the process's first pool (Pool.swift); nil while there is none.
  var poolEvents: UInt = 0  // atomic: a PoolEventHandler, or 0 (installed once, read by any thread)

  /// A new heap in its own mappings, or nil when the OS refuses memory.
  public static func create() -> UnsafeMutablePointer<MHeap>? {
    chooseHeapAddress()  // once per process: where every heap's memory goes (HeapAddress)
    let layout = HeapBlock()
    guard let mem = sysMap(layout.bytes), let pa = PageAlloc() else { return nil }
    let h = mem.bindMemory(to: MHeap.self, capacity: 1)
    let empty = (mem + layout.emptySpan).bindMemory(to: MSpan.self, capacity: 1)
    let bits = (mem + layout.bitsAllocs).bindMemory(to: FixAlloc.self, capacity: bitsOrders)
    let caches = (mem + layout.caches).bindMemory(to: CacheList.self, capacity: 1)
    caches.initialize(to: CacheList())
    let scav = (mem + layout.scavenger).bindMemory(to: ScavengerState.self, capacity: 1)
    let ins = (mem + layout.instrumentation).bindMemory(to: Instrumentation.self, capacity: 1)
    ins.initialize(to: Instrumentation())
    let largeSlots = (mem + layout.largeSlots).bindMemory(to: SpanPtr?.self, capacity: largeCacheSlots)
    largeSlots.initialize(repeating: nil, count: largeCacheSlots)
    // Fresh mapping: its zero bytes already are empty MCentrals (nothing to write).
    let centrals = (mem + layout.centrals).bindMemory(to: MCentral.self, capacity: SpanClass.centralCount)
    scav.initialize(to: ScavengerState(
      runs: (mem + layout.scavengerRuns).bindMemory(to: UInt.self, capacity: 2 * ScavengerState.maxRuns)))
    let flushed = (mem + layout.flushed).bindMemory(to: UInt64.self, capacity: MCache.counterWords)
    let globalFrees = (mem + layout.globalFrees).bindMemory(to: UInt64.self, capacity: MCache.counterWords)
    for o in 0..<bitsOrders { (bits + o).initialize(to: FixAlloc(size: 4 * 8 << o)) }
    empty.initialize(to: MSpan())  // nelems 0, allocCache 0: every fast path misses on it
    h.initialize(to: MHeap(
      arenas: (mem + layout.arenaL1).bindMemory(to: ArenaL2?.self, capacity: arenaL1Entries),
      pages: pa, centrals: centrals, emptySpan: empty,
      spanalloc: FixAlloc(size: roundUp(MemoryLayout<MSpan>.stride, 64)),  // 64-aligned: see MSpan
      cachealloc: FixAlloc(size: MCache.bytes),
      tinyalloc: FixAlloc(size: tinySpanBitsBytes()),
      bitsalloc: bits, caches: caches, scavenger: scav, instrumentation: ins, flushed: flushed, globalFrees: globalFrees,
      largeSlots: largeSlots))
    // Random, 1 mod 8 and far from wrapping: neither key nor key + 1 (the two FreeList marks)
    // is ever a pointer to a slot, or overflows.
    h.pointee.freeKey = (UInt(truncatingIfNeeded: goalloc_random64() ^ UInt64(UInt(bitPattern: h))) >> 4) << 3 | 1
    return h
  }
}

/// The heap's own block (one mapping): the MHeap, then its fixed-size parts, each at a 64-byte
/// boundary, in the order a process touches them: what every process touches first (the arena
/// index's level 1, 8 KiB, of which a process touches the page of its heap's entry), then the
/// mcentrals (a central's page is written only when its class is used), then the dead caches'
/// counters (written when a thread exits) and cacheless frees last, so a small process does not
/// map their pages. Offsets are bytes from the block's start.
struct HeapBlock {
  var emptySpan = 0, bitsAllocs = 0, caches = 0, scavenger = 0, instrumentation = 0, largeSlots = 0
  var arenaL1 = 0, centrals = 0, scavengerRuns = 0, flushed = 0, globalFrees = 0
  var bytes = 0

  init() {
    // (No local closures: the Embedded build must not box `end` on the heap it is creating.)
    var end = MemoryLayout<MHeap>.stride
    emptySpan = HeapBlock.place(&end, MemoryLayout<MSpan>.stride)
    bitsAllocs = HeapBlock.place(&end, MemoryLayout<FixAlloc>.stride * bitsOrders)
    caches = HeapBlock.place(&end, MemoryLayout<CacheList>.stride)
    scavenger = HeapBlock.place(&end, MemoryLayout<ScavengerState>.stride)
    instrumentation = HeapBlock.place(&end, MemoryLayout<Instrumentation>.stride)
    largeSlots = HeapBlock.place(&end, MemoryLayout<SpanPtr?>.stride * largeCacheSlots)
    arenaL1 = HeapBlock.place(&end, MemoryLayout<ArenaL2?>.stride * arenaL1Entries)
    centrals = HeapBlock.place(&end, MemoryLayout<MCentral>.stride * SpanClass.centralCount)
    scavengerRuns = HeapBlock.place(&end, MemoryLayout<UInt>.stride * 2 * ScavengerState.maxRuns)
    flushed = HeapBlock.place(&end, MemoryLayout<UInt64>.stride * MCache.counterWords)
    globalFrees = HeapBlock.place(&end, MemoryLayout<UInt64>.stride * MCache.counterWords)
    bytes = roundUp(end, 64)
  }

  /// The offset of a field of `bytes` bytes at the next 64-byte boundary after `end`.
  private static func place(_ end: inout Int, _ bytes: Int) -> Int {
    let at = roundUp(end, 64)
    end = at + bytes
    return at
  }
}

/// The live mcaches of a heap and their lock (apart from MHeap: a different lock domain).
/// What the heap reports to the pools (Pool.swift) through `MHeap.poolEvents`: the tiers below
/// never name the pools' own functions.
enum PoolEvent {
  static let collected: Int32 = 1     // a collection of the GC mode completed
  static let tick: Int32 = 2          // a scavenger tick
  static let trim: Int32 = 3          // malloc_trim / goalloc_release_free_memory
  static let cacheGone: Int32 = 4     // a thread's cache is about to go (argument: the cache)
  static let forkPrepare: Int32 = 5
  static let forkParent: Int32 = 6
  static let forkChild: Int32 = 7
}

/// Sends a PoolEvent to the pools, if there are any.
@inline(__always) func reportPoolEvent(_ h: UnsafeMutablePointer<MHeap>, _ event: Int32, _ arg: UnsafeMutableRawPointer? = nil) {
  let w = atomicLoadUInt(&h.pointee.poolEvents)
  if w != 0 { unsafeBitCast(w, to: PoolEventHandler.self)(event, arg) }
}

/// MHeap.poolEvents' function.
typealias PoolEventHandler = @convention(c) (Int32, UnsafeMutableRawPointer?) -> Void

public struct CacheList {
  var _first: UInt64 = 0  // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0
  var head: UnsafeMutableRawPointer? = nil
  var count = 0
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Adds at least `npages` pages of fresh memory. Heap lock held. The heap grows by a quarter of
  /// its size (at least 4 MiB, at most an arena) or by what is asked if that is more, and by
  /// exactly what is asked when the kernel refuses the larger step (an address-space limit).
  func grow(_ npages: Int) -> Bool {
    if npages <= 0 || npages > (1 << (heapAddrBits - 2)) / pageSize { return false }
    let need = npages * pageSize
    let step = min(max(pointee.pages.totalPages * pageSize / 4, heapGrowMinBytes), heapArenaBytes)
    let bytes = roundUp(max(need, step), heapGrowMinBytes)
    let me = UInt(bitPattern: self)
    if let base = reserveHeap(bytes, align: pageSize, huge: false, owner: me) {
      return addMemory(base, bytes)
    }
    if bytes > need, let base = reserveHeap(need, align: pageSize, huge: false, owner: me) {
      return addMemory(base, need)
    }
    return false
  }

  /// Fresh memory for one span of `npages` pages at a multiple of `alignPages` pages (more than an
  /// arena), mapped at exactly that size: growing by npages + alignPages - 1 pages would keep the
  /// whole alignment mapped (4 GiB for memalign(1 << 32, 1)). Returns its base. Heap lock held.
  func growAligned(_ npages: Int, alignPages: Int) -> UInt? {
    if npages <= 0 || npages > (1 << (heapAddrBits - 2)) / pageSize { return nil }
    guard let base = reserveHeap(npages * pageSize, align: alignPages * pageSize, huge: true,
                                 owner: UInt(bitPattern: self)) else { return nil }
    return addMemory(base, npages * pageSize) ? base : nil
  }

  /// Adds fresh memory [base, base + bytes) to the heap: the arena index entries of the arenas it
  /// touches (the window's slices of the flat table, else tables of their own), the page
  /// allocator's records of its pages, and its range. When metadata memory is refused, the memory
  /// is unmapped again and nothing changes but index entries (harmless: they map no span).
  func addMemory(_ base: UInt, _ bytes: Int) -> Bool {
    let end = base + UInt(bytes)
    var a = base & ~UInt(heapArenaBytes - 1)
    var ok = true
    while a < end && ok {
      ok = addArena(a)
      a += UInt(heapArenaBytes)
    }
    if ok, let r = rangeRecord(base, end), pointee.pages.grow(base, bytes / pageSize) {
      linkRange(r, base, end)
      pointee.arenaBytes += bytes
      return true
    }
    goalloc_sys_unmap(UnsafeMutableRawPointer(bitPattern: base), bytes)
    return false
  }

  /// The arena index entry of the arena at `a` (and its level-2 block), created if missing.
  private func addArena(_ a: UInt) -> Bool {
    let i1 = Int(a >> UInt(arenaL1Shift))
    if pointee.arenas[i1] == nil {
      guard let l2 = pointee.persistent.alloc(arenaL2Bytes, align: 4096) else { return false }
      atomicStoreUInt(UnsafeMutableRawPointer(pointee.arenas + i1).assumingMemoryBound(to: UInt.self),
                      UInt(bitPattern: l2))
    }
    let l2 = pointee.arenas[i1].unsafelyUnwrapped
    let i2 = Int((a >> UInt(logHeapArenaBytes)) & UInt(arenaL2Entries - 1))
    if l2[i2] != nil { return true }
    // In the window: the arena's slice of the flat table (HeapAddress); else a table of its own.
    guard let meta = windowSpans(a) ?? pointee.persistent.alloc(heapArenaMetaBytes, align: 4096) else {
      return false
    }
    pointee.arenaMetaSys += heapArenaMetaBytes
    atomicStoreUInt(UnsafeMutableRawPointer(l2 + i2).assumingMemoryBound(to: UInt.self), UInt(bitPattern: meta))
    return true
  }

  /// The record for range [base, end): nil (no record needed) when it extends a neighbour, else a
  /// new one (nil also when metadata memory is refused: see linkRange).
  private func rangeRecord(_ base: UInt, _ end: UInt) -> UnsafeMutablePointer<HeapRange>?? {
    var it = pointee.ranges
    while let r = it {
      if r.pointee.end == base || r.pointee.base == end { return .some(nil) }
      it = r.pointee.next
    }
    guard let m = pointee.persistent.alloc(MemoryLayout<HeapRange>.stride, align: 8) else { return nil }
    return .some(m.bindMemory(to: HeapRange.self, capacity: 1))
  }

  /// Adds [base, end) to the ranges: merged into its neighbours, else as `fresh`, in address order.
  private func linkRange(_ fresh: UnsafeMutablePointer<HeapRange>?, _ base: UInt, _ end: UInt) {
    var prev: UnsafeMutablePointer<HeapRange>? = nil
    var it = pointee.ranges
    while let r = it, r.pointee.end < base { prev = r; it = r.pointee.next }
    if let r = it, r.pointee.end == base {  // extends r; perhaps up to the next one
      r.pointee.end = end
      if let n = r.pointee.next, n.pointee.base == end {
        r.pointee.end = n.pointee.end
        r.pointee.next = n.pointee.next  // (n's 24 bytes stay with PersistentAlloc)
      }
      return
    }
    if let r = it, r.pointee.base == end { r.pointee.base = base; return }
    let n = fresh.unsafelyUnwrapped
    n.initialize(to: HeapRange(base: base, end: end, next: it))
    if let prev { prev.pointee.next = n } else { pointee.ranges = n }
  }

  /// A new in-use span of `npages` pages for span class `spc` (0/1: large), its first page
  /// aligned to `alignPages` pages, from the pages the heap has; with `grow`, first releasing
  /// free pages near a memory limit and then adding arenas when none fit. Nil when out of
  /// memory. (The mcentral tier reclaims parked empty spans before it asks to grow:
  /// `allocSpanReclaiming`.)
  func allocSpan(_ npages: Int, spanclass spc: SpanClass, alignPages: Int = 1, grow mayGrow: Bool = true,
                 collected: Bool = false) -> SpanPtr? {
    // GOALLOC_SECURE=1: one more page, made inaccessible, ends the span (SecureMode.swift).
    let usable = npages
    let guardPages = atomicLoad32(&pointee.secure) != 0 ? 1 : 0
    let npages = usable + guardPages
    lockAcquire(&pointee.lock)
    if spc.isLarge && pointee.largeCached > 0 {
      if alignPages == 1, let s = takeCachedLargeLocked(npages, spanclass: spc) {
        if !spc.noscan && !collected { noteRootSpan() }
        goalloc_dirty_span_alloc(s.pointee.startAddr, s.pointee.startAddr &+ UInt(s.pointee.npages &* pageSize))
        lockRelease(&pointee.lock)
        return s
      }
      flushLargeCacheLocked()  // a miss: their pages back to the page heap first
    }
    var r = npages <= PageAlloc.pageCacheMaxPages && alignPages == 1 ? pointee.pages.allocFromCache(npages) : nil
    if r == nil { r = pointee.pages.alloc(npages, alignPages: alignPages) }
    if r == nil && mayGrow {
      if atomicLoad64(&pointee.scavenger.pointee.memLimit) != 0 {
        lockRelease(&pointee.lock)
        scavengeForLimit(growing: (npages + alignPages) * pageSize)
        lockAcquire(&pointee.lock)
      }
      if alignPages * pageSize > heapArenaBytes {  // memory of exactly the span's size (growAligned)
        guard let base = growAligned(npages, alignPages: alignPages) else {
          lockRelease(&pointee.lock)
          return nil
        }
        r = (base, pointee.pages.allocRange(base, npages))
      } else {
        if !grow(npages + alignPages - 1) { lockRelease(&pointee.lock); return nil }
        r = pointee.pages.alloc(npages, alignPages: alignPages)
      }
    }
    guard let (base, scav) = r else { lockRelease(&pointee.lock); return nil }
    let large = spc.isLarge
    let sc = spc.sizeclass
    let nelems = large ? 1 : usable * pageSize / classSize(sc)
    let words = (nelems + 63) >> 6
    let order = spanBitsOrder(nelems)
    // (A tiny span's bitmaps and block counts are one allocation: MSpan.tinyCounts.)
    guard let sraw = pointee.spanalloc.alloc(&pointee.persistent),
          let bits = spc.isTiny ? pointee.tinyalloc.alloc(&pointee.persistent)
                                : pointee.bitsalloc[order].alloc(&pointee.persistent) else {
      pointee.pages.free(base, npages)
      lockRelease(&pointee.lock)
      return nil
    }
    let s = sraw.bindMemory(to: MSpan.self, capacity: 1)
    s.initialize(to: MSpan())
    s.pointee.startAddr = base
    s.pointee.handedEnd = base
    s.pointee.npages = npages
    s.pointee.needzero = scav == npages ? 0 : 1
    s.setSpanClass(spc)
    s.pointee.bits = bits.bindMemory(to: UInt64.self, capacity: 4 << order)
    s.pointee.bitsOrder = UInt8(order)
    s.pointee.nelems = nelems
    if large {
      s.pointee.elemsize = usable * pageSize
      s.pointee.allocCount = 1
      s.pointee.freeindex = 1
    } else {
      s.pointee.elemsize = classSize(sc)
      s.pointee.divMulHi = UInt64(classDivMagic(sc)) &<< 32
      let tail = nelems & 63  // bits past nelems read as allocated (see nextFreeFast)
      if tail != 0 { s.allocWord(words - 1).pointee = ~((1 << UInt64(tail)) - 1) }
      s.pointee.allocCache = ~s.allocWord(0).pointee
    }
    if guardPages != 0 && goalloc_sys_protect(UnsafeMutableRawPointer(bitPattern: base + UInt(usable * pageSize)), pageSize, 0) == 0 {
      s.pointee.guardPages = UInt8(guardPages)
    }
    setSpans(pointee.arenas, base, npages, s)
    goalloc_dirty_span_alloc(base, base &+ UInt(npages &* pageSize))  // (a tracking period's pages)
    pointee.pagesInUse += npages
    pointee.spansInUse += 1
    updateNearLimitLocked()
    atomicStore32(&s.pointee.state, spanInUse)
    if !spc.noscan && !collected { noteRootSpan() }
    // A heap this size may one day have memory to give back: the background scavenger is wanted
    // (started from the next slow-path malloc). Smaller processes never pay for its thread.
    if _slowPath(pointee.pagesInUse >= scavengerStartPages)
        && atomicLoad32(&pointee.scavenger.pointee.started) == 0 {
      atomicStore32(&pointee.scavenger.pointee.wanted, 1)
    }
    lockRelease(&pointee.lock)
    return s
  }

  /// Resizes large span s to `npages` in place: shrinking frees its tail; growing takes the pages
  /// right after it if they are free. Returns false (nothing changed) when they are not.
  func resizeLarge(_ s: SpanPtr, to npages: Int) -> Bool {
    if atomicLoad32(&pointee.secure) != 0 { return false }  // its guard page stays at its end: move
    lockAcquire(&pointee.lock)
    defer { lockRelease(&pointee.lock) }
    let old = s.pointee.npages
    let base = s.pointee.startAddr
    if npages < old {
      let tail = base + UInt(npages * pageSize)
      setSpans(pointee.arenas, tail, old - npages, nil)
      pointee.pages.free(tail, old - npages)
      pointee.pagesInUse -= old - npages
    } else if npages > old {
      flushLargeCacheLocked()  // a cached span after it would block the growth
      let next = base + UInt(old * pageSize), extra = npages - old
      let end = next + UInt(extra * pageSize)
      if end >> UInt(heapAddrBits) != 0 { return false }
      var ci = Int(next >> UInt(logChunkBytes))
      while ci <= Int((end - 1) >> UInt(logChunkBytes)) {  // every page must be heap memory
        if pointee.pages.chunk(ci) == nil || ci > pointee.pages.maxChunk { return false }
        ci += 1
      }
      if pointee.pages.countFree(next, extra).free != extra { return false }
      _ = pointee.pages.allocRange(next, extra)
      setSpans(pointee.arenas, next, extra, s)
      pointee.pagesInUse += extra
    }
    s.pointee.npages = npages
    s.pointee.elemsize = npages * pageSize
    return true
  }

  /// Every thread's binned large spans (idleOnly: of the threads that used their bins for none
  /// since the previous such call) back to the page heap (LargeBins, through `binThief`).
  /// Returns the pages. Takes the caches lock and the heap lock: call it with neither held.
  @discardableResult
  func takeBackBins(idleOnly: Bool = false) -> Int {
    guard let thief = pointee.binThief else { return 0 }
    return thief(UnsafeMutableRawPointer(self), idleOnly)
  }

  /// Returns a span's pages to the page heap; they merge with free neighbours. Near the memory
  /// limit they are released to the OS first (Scavenger.swift).
  func freeSpan(_ s: SpanPtr) {
    let release = nearLimit && s.pointee.guardPages == 0
    if release { releaseSpanPages(s) }
    lockAcquire(&pointee.lock)
    freeSpanLocked(s, released: release)
    lockRelease(&pointee.lock)
  }

  /// A freed large span: kept by the LargeCache when it fits (not near the memory limit), else
  /// back to the page heap.
  func freeLargeSpan(_ s: SpanPtr) {
    if nearLimit { return freeSpan(s) }
    lockAcquire(&pointee.lock)
    if !cacheLargeLocked(s) { freeSpanLocked(s) }
    lockRelease(&pointee.lock)
  }

  /// freeSpan with the heap lock held; `released`: its pages were released to the OS already.
  func freeSpanLocked(_ s: SpanPtr, released: Bool = false) {
    atomicStore32(&s.pointee.state, spanDead)
    if s.pointee.guardPages != 0 {
      let usable = s.pointee.npages - Int(s.pointee.guardPages)
      _ = goalloc_sys_protect(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr + UInt(usable * pageSize)), pageSize, 1)
    }
    setSpans(pointee.arenas, s.pointee.startAddr, s.pointee.npages, nil)
    pointee.pages.free(s.pointee.startAddr, s.pointee.npages, scavenged: released)
    pointee.pagesInUse -= s.pointee.npages
    pointee.spansInUse -= 1
    if s.spanClass.isTiny {
      pointee.tinyalloc.free(UnsafeMutableRawPointer(s.pointee.bits!))
    } else {
      pointee.bitsalloc[Int(s.pointee.bitsOrder)].free(UnsafeMutableRawPointer(s.pointee.bits!))
    }
    s.pointee.bits = nil
    pointee.spanalloc.free(UnsafeMutableRawPointer(s))
    updateNearLimitLocked()
  }

  // MARK: every span (Go's allspans, read from the spans tables)

  /// Every span that holds heap pages (in use, or kept by the LargeCache or a thread's
  /// LargeBins), whatever list it is on or none (a floating span, a thread's current or ready
  /// span), in address order: what a collector, the heap checker and the fragmentation figures
  /// enumerate. Heap lock held by the caller and by `body` (which must not allocate from this
  /// heap), or the world stopped.
  func forEachSpanLocked(_ body: (SpanPtr) -> Void) {
    var walk = SpanWalk(self)
    while let s = walk.next() { body(s) }
  }

  /// A malloc span of a scan class exists (or did): the GC mode's mark must walk the spans for
  /// them (MGCMark.scanMallocScanSpans). Sticky, so it can only err towards walking.
  @inline(__always) func noteRootSpan() {
    if atomicLoadRelaxed32(&pointee.rootSpansSeen) == 0 { atomicStore32(&pointee.rootSpansSeen, 1) }
  }

  /// The mcentral of span class spc.
  @inline(__always) func central(_ spc: SpanClass) -> UnsafeMutablePointer<MCentral> { pointee.centrals + spc.index }

  /// The in-use span holding address p, or nil.
  @inline(__always) public func spanOf(_ p: UnsafeRawPointer) -> SpanPtr? {
    spanOfIndex(UnsafeMutableRawPointer(pointee.arenas), UInt(bitPattern: p))
  }
}
