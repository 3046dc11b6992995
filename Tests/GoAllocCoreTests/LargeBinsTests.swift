// LargeBins: each thread's freed large spans of up to 256 KiB, by page count. Clear-box tests on
// private heaps (a second cache stands for another thread), then real threads on the
// process-wide heap.
import Foundation
import Testing
import Glibc
import CGoAllocShim
@testable import GoAllocCore

@Suite struct LargeBinsTests {
  func index(_ h: UnsafeMutablePointer<MHeap>) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(h.pointee.arenas) }
  func span(_ h: UnsafeMutablePointer<MHeap>, _ a: UInt) -> SpanPtr? { h.spanOf(UnsafeRawPointer(bitPattern: a)!) }
  func state(_ s: SpanPtr) -> UInt32 { atomicLoad32(&s.pointee.state) }
  func free(_ h: UnsafeMutablePointer<MHeap>, _ c: MCache?, _ a: UInt) {
    freeIn(h, index(h), c?.raw, a, op: "free")
  }
  func alloc(_ c: MCache, _ size: Int, noscan: Bool = true, zero: Bool = false) -> UInt {
    largeAlloc(c, size, noscan: noscan, zero: zero, alignPages: 1)
  }
  /// Go's identities and the ones LargeBins must keep.
  func expectIdentities(_ m: MemStats, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(m.heapIdle + m.heapInuse == m.heapSys, "\(m)", sourceLocation: sourceLocation)
    #expect(m.mallocs >= m.frees && m.mallocs - m.frees == m.heapObjects, "\(m)", sourceLocation: sourceLocation)
    #expect(m.heapAlloc <= m.heapInuse, "\(m)", sourceLocation: sourceLocation)
    #expect(m.heapReleased <= m.heapIdle, "\(m)", sourceLocation: sourceLocation)
  }

  @Test func aFreedSpanComesBackForTheSamePageCount() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let a = alloc(c, 40_000)  // 5 pages
    let s = span(h, a)!
    UnsafeMutablePointer<UInt8>(bitPattern: a)!.update(repeating: 0x5A, count: 40_000)
    free(h, c, a)
    // Binned: not in use, still in the span table; the heap still counts its pages, MemStats
    // counts them idle.
    #expect(state(s) == spanBinned && span(h, a) == s && c.bin(5).pointee == 1 && c.binnedPages == 5)
    #expect(h.pointee.largeCached == 0 && h.pointee.pagesInUse == 5)
    var m = MemStats.read(h)
    expectIdentities(m)
    #expect(m.heapInuse == 0 && m.heapAlloc == 0 && m.spansInUse == 0 && m.heapIdle == m.heapSys)
    #expect(m.largeAllocs == 1 && m.largeFrees == 1 && m.heapObjects == 0)
    expectInvariants(h, c)
    // The same page count, another size and kind: the same span, as it was (not zeroed).
    let b = alloc(c, 33_000, noscan: false)
    #expect(b == a && state(s) == spanInUse && c.bin(5).pointee == 0 && c.binnedPages == 0)
    #expect(Int(s.pointee.spanclass) == SpanClass.large(noscan: false).index)
    #expect(UnsafeMutablePointer<UInt8>(bitPattern: b)![32_999] == 0x5A)
    m = MemStats.read(h)
    expectIdentities(m)
    #expect(m.heapInuse == UInt64(5 * pageSize) && m.heapAlloc == UInt64(5 * pageSize) && m.largeAllocs == 2)
    // Another page count misses (and leaves the bin alone).
    free(h, c, b)
    let d = alloc(c, 48_000)  // 6 pages
    #expect(d != a && c.bin(5).pointee == 1 && c.bin(6).pointee == 0)
    // calloc of a binned span: zeroed.
    let z = alloc(c, 40_000, zero: true)
    let zp = UnsafeMutablePointer<UInt8>(bitPattern: z)!
    #expect(z == a && (0..<40_000).allSatisfy { zp[$0] == 0 })
    m = MemStats.read(h)
    expectIdentities(m)
    #expect(m.largeAllocs == 4 && m.largeFrees == 2 && m.heapObjects == 2)
    #expect(m.heapAlloc == UInt64(11 * pageSize) && m.heapInuse == UInt64(11 * pageSize))
    expectInvariants(h, c)
    // Larger than the bins take: the LargeCache, as before.
    let big = alloc(c, (binMaxPages + 1) * pageSize)
    free(h, c, big)
    #expect(h.pointee.largeCached == 1 && c.binnedPages == 0)
  }

  @Test func aBinnedSpanIsNotLive() {
    let h = MHeap.create()!
    h.debugFlags = GOALLOC_DEBUG_PARSED | GOALLOC_DEBUG_BADFREE_WARN
    let c = MCache.create(h)!
    let a = alloc(c, 100_000)
    let s = span(h, a)!
    free(h, c, a)
    #expect(state(s) == spanBinned && atomicLoad64(&h.pointee.badFrees) == 0)
    // A second free (by this thread or another), realloc or malloc_usable_size: reported, as
    // for any freed large object; the span stays binned, counted once.
    free(h, c, a)
    let other = MCache.create(h)!
    free(h, other, a)
    free(h, nil, a)
    #expect(atomicLoad64(&h.pointee.badFrees) == 3)
    #expect(liveObjectSpan(h, a, op: "realloc") == nil && liveObjectSpan(h, a, op: "malloc_usable_size") == nil)
    free(h, c, a + UInt(pageSize))  // interior
    #expect(atomicLoad64(&h.pointee.badFrees) == 6)
    #expect(state(s) == spanBinned && c.bin(13).pointee == 1 && other.binnedPages == 0)
    let m = MemStats.read(h)
    expectIdentities(m)
    #expect(m.largeFrees == 1 && m.heapObjects == 0)
    expectInvariants(h, c)
    expectInvariants(h, other)
    #expect(alloc(c, 100_000) == a && state(s) == spanInUse)
  }

  @Test func binsAreBoundedByCountAndBytes() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    // A full bin sends its older half to the page heap.
    let ps = (0...binSlots).map { _ in alloc(c, 5 * pageSize) }
    for p in ps { free(h, c, p) }
    let kept = binSlots - (binSlots + 1) / 2 + 1
    #expect(Int(c.bin(5).pointee) == kept && c.binnedPages == 5 * kept)
    for p in ps.prefix((binSlots + 1) / 2) { #expect(span(h, p) == nil) }
    for p in ps.suffix(kept) { #expect(state(span(h, p)!) == spanBinned) }
    expectInvariants(h, c)
    // Newest first.
    #expect(alloc(c, 5 * pageSize) == ps.last!)
    c.releaseAll()
    // The thread's budget: over it, whole other bins go back, largest first.
    let big = (0..<binSlots).map { _ in alloc(c, binMaxPages * pageSize) }
    let mid = [alloc(c, 31 * pageSize), alloc(c, 30 * pageSize)]
    for p in big { free(h, c, p) }
    #expect(c.binnedPages == binSlots * binMaxPages)
    free(h, c, mid[0])
    #expect(c.binnedPages == binSlots * binMaxPages + 31)
    free(h, c, mid[1])
    #expect(c.binnedPages == 61 && c.bin(binMaxPages).pointee == 0 && span(h, big[0]) == nil)
    #expect(c.binnedPages <= binBudgetPages)
    expectInvariants(h, c)
    expectIdentities(MemStats.read(h))
  }

  @Test func sizesThatDoNotRepeatEmptyTheBins() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let a = alloc(c, 5 * pageSize), b = alloc(c, 6 * pageSize)  // (two misses)
    free(h, c, a)
    free(h, c, b)
    free(h, c, alloc(c, 6 * pageSize))  // a hit
    var live: [UInt] = []
    // Misses with a hit between them: the bins stay.
    for _ in 1..<binMissLimit { live.append(alloc(c, 7 * pageSize)) }
    #expect(alloc(c, 6 * pageSize) == b)  // a hit
    for _ in 1..<binMissLimit { live.append(alloc(c, 7 * pageSize)) }
    #expect(c.binnedPages == 5 && span(h, a) != nil)
    // binMissLimit misses in a row: back to the page heap.
    live.append(alloc(c, 7 * pageSize))
    #expect(c.binnedPages == 0 && span(h, a) == nil)
    expectInvariants(h, c)
    expectIdentities(MemStats.read(h))
  }

  @Test func anotherThreadsFreeGoesToItsOwnBins() {
    let h = MHeap.create()!
    let owner = MCache.create(h)!, other = MCache.create(h)!
    let a = alloc(owner, 60_000)  // 8 pages
    free(h, other, a)
    #expect(other.bin(8).pointee == 1 && owner.bin(8).pointee == 0)
    #expect(alloc(owner, 60_000) != a)  // the owner's bins do not have it
    #expect(alloc(other, 60_000) == a)  // the freeing thread's do
    let m = MemStats.read(h)
    expectIdentities(m)
    #expect(m.largeAllocs == 3 && m.largeFrees == 1 && m.heapObjects == 2)
    expectInvariants(h, owner)
    expectInvariants(h, other)
  }

  @Test func binsGoBackAtExitOnScavengeAndWhenIdle() {
    let h = MHeap.create()!
    let c1 = MCache.create(h)!, c2 = MCache.create(h)!
    let a = alloc(c1, 40_000), b = alloc(c2, 200_000)
    free(h, c1, a)
    free(h, c2, b)
    #expect(c1.binnedPages == 5 && c2.binnedPages == 25)
    // malloc_trim and the memory limit scavenge everything: every thread's bins first.
    h.scavenge(maxBytes: Int.max)
    #expect(c1.binnedPages == 0 && c2.binnedPages == 0 && span(h, a) == nil && span(h, b) == nil)
    #expect(h.pointee.pagesInUse == 0 && h.pointee.pages.freePages == h.pointee.pages.totalPages)
    #expect(h.pointee.pages.scavPages == h.pointee.pages.totalPages)
    var m = MemStats.read(h)
    expectIdentities(m)
    #expect(m.heapInuse == 0 && m.largeFrees == 2 && m.heapObjects == 0)
    expectInvariants(h, c1)
    expectInvariants(h, c2)
    // The owner finds its slots taken (a miss), and bins again.
    let a2 = alloc(c1, 40_000)
    free(h, c1, a2)
    #expect(c1.bin(5).pointee == 1 && c1.binnedPages == 5)
    // The scavenger's tick takes the bins of a thread that used none since its previous tick.
    let b2 = alloc(c2, 200_000)
    free(h, c2, b2)
    h.scavengerTick(reclaimSpans: { _ in 0 })  // first look: both were busy
    #expect(c1.binnedPages == 5 && c2.binnedPages == 25)
    free(h, c2, alloc(c2, 200_000))  // c2 is busy: a hit and a free
    h.scavengerTick(reclaimSpans: { _ in 0 })
    #expect(c1.binnedPages == 0 && span(h, a2) == nil)     // idle for a tick: taken
    #expect(c2.binnedPages == 25)                           // busy: kept
    h.scavengerTick(reclaimSpans: { _ in 0 })
    #expect(c2.binnedPages == 0)
    expectInvariants(h, c1)
    expectInvariants(h, c2)
    // Thread exit: the cache's bins go back to the page heap, its counters to the heap's.
    let a3 = alloc(c1, 40_000)
    free(h, c1, a3)
    let before = MemStats.read(h)
    c1.destroy()
    #expect(span(h, a3) == nil)
    m = MemStats.read(h)
    expectIdentities(m)
    #expect(m.largeAllocs == before.largeAllocs && m.largeFrees == before.largeFrees && m.heapInuse == before.heapInuse)
    #expect(h.checkHeap().ok)
  }

  @Test func aHeapAboutToGrowTakesTheBinsBackFirst() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    // Spans of 20 pages (past the page cache's 16) until no run of 20 free pages is left.
    var ps: [UInt] = [alloc(c, 20 * pageSize)]
    let total = h.pointee.pages.totalPages
    while h.pointee.pages.freePages >= 20 { ps.append(alloc(c, 20 * pageSize)) }
    #expect(h.pointee.pages.totalPages == total)
    // Seven neighbours into the bins (140 pages), then a request no free run fits.
    let sorted = ps.sorted()
    for p in sorted[2..<9] { free(h, c, p) }
    #expect(c.binnedPages == 140)
    let q = alloc(c, 100 * pageSize)
    #expect(q == sorted[2] && c.binnedPages == 0 && h.pointee.pages.totalPages == total)
    expectInvariants(h, c)
  }

  @Test func secureModeBinsNothing() {
    let h = MHeap.create()!
    h.pointee.secure = 1
    let c = MCache.create(h)!
    let a = alloc(c, 40_000)
    free(h, c, a)
    #expect(c.binnedPages == 0 && span(h, a) == nil)
    expectInvariants(h, c)
  }
}

/// The process-wide heap with real threads.
@Suite(.serialized) struct LargeBinsThreadTests {
  /// Blocks a thread allocated, freed by another thread (into that thread's bins), reused there,
  /// and given back when that thread exits.
  @Test func crossThreadFreesAndThreadExit() { _withExclusiveGlobalHeapForTesting {
    let h = globalHeap()!
    let before = MemStats.read(h)
    let n = 40
    let blocks = UnsafeMutablePointer<UInt>.allocate(capacity: n + 1)
    defer { blocks.deallocate() }
    blocks.initialize(repeating: 0, count: n + 1)  // blocks[n]: the consumer's verdict (0: fine)
    var producer = pthread_t(), consumer = pthread_t()
    #expect(pthread_create(&producer, nil, { arg in
      let blocks = arg!.assumingMemoryBound(to: UInt.self)
      for i in 0..<40 {
        let p = goMalloc(100_000, mallocMode: true)!
        memset(p, Int32(i), 100_000)
        blocks[i] = UInt(bitPattern: p)
      }
      return nil
    }, blocks) == 0)
    pthread_join(producer, nil)
    #expect(pthread_create(&consumer, nil, { arg in
      let blocks = arg!.assumingMemoryBound(to: UInt.self)
      for i in 0..<40 {
        let p = UnsafeMutablePointer<UInt8>(bitPattern: blocks[i])!
        if p[0] != UInt8(i) || p[99_999] != UInt8(i) { blocks[40] = 1 }
        goFree(UnsafeMutableRawPointer(p))
      }
      // The newest block freed comes back to this thread first.
      let q = goMalloc(100_000, mallocMode: true)!
      if UInt(bitPattern: q) != blocks[39] { blocks[40] = 2 }
      if !(MCache(goalloc_tls_get()!).checkInvariants().ok) { blocks[40] = 3 }
      goFree(q)
      return nil  // thread exit: its bins go back to the page heap
    }, blocks) == 0)
    pthread_join(consumer, nil)
    #expect(blocks[40] == 0, "consumer check \(blocks[40])")
    for i in 0..<n {
      if let s = h.spanOf(UnsafeRawPointer(bitPattern: blocks[i])!) { #expect(atomicLoad32(&s.pointee.state) != spanBinned) }
    }
    let after = MemStats.read(h)
    #expect(after.numThreadCaches == before.numThreadCaches)
    #expect(after.largeAllocs - before.largeAllocs == UInt64(n + 1))
    #expect(after.largeFrees - before.largeFrees == UInt64(n + 1))
    #expect(after.heapObjects == before.heapObjects)
    #expect(after.heapIdle + after.heapInuse == after.heapSys && after.heapAlloc <= after.heapInuse)
    #expect(h.checkHeap().ok)
  } }

  /// Threads run rings of mid-size blocks (their bins hit all the time) while another thread
  /// keeps taking every thread's bins back and reading MemStats: no block is handed out twice
  /// (each is checked before its free), the identities hold in every snapshot, the heap checks.
  @Test func ownersAndThievesRace() { _withExclusiveGlobalHeapForTesting {
    let h = globalHeap()!
    let before = MemStats.read(h)
    let stop = Phase()
    let failures = Counter(), thefts = Counter()
    let thief = Thread {
      let h = globalHeap()!
      var problems = 0
      while stop.value == 0 {
        if h.takeBackBins(idleOnly: false) > 0 { thefts.add() }
        let m = MemStats.read(h)
        if m.heapIdle + m.heapInuse != m.heapSys || m.heapAlloc > m.heapInuse || m.mallocs - m.frees != m.heapObjects {
          problems += 1
        }
        h.takeBackBins(idleOnly: true)
        usleep(50)
      }
      for _ in 0..<problems { failures.add() }
      stop.set(2)
    }
    thief.start()
    runConcurrently(threads: 3) { t in
      let sizes = [33_000, 40_000, 40_000, 100_000, 200_000, 262_144]
      var ring: [(UnsafeMutableRawPointer, Int)] = []
      var rng = RepeatableRNG(seed: UInt64(t) &+ 7)
      for k in 0..<(20_000 * stressScale) {
        if ring.count == 24 {
          let (p, n) = ring.swapRemoveRandom(&rng)
          let b = p.assumingMemoryBound(to: UInt8.self)
          if b[0] != UInt8(truncatingIfNeeded: n &+ t) || b[n - 1] != UInt8(truncatingIfNeeded: n &+ t) { failures.add() }
          goFree(p)
        }
        let n = sizes[Int(rng.next() % UInt64(sizes.count))]
        guard let p = goMalloc(n, zero: k % 16 == 0, mallocMode: true) else { failures.add(); continue }
        let b = p.assumingMemoryBound(to: UInt8.self)
        if k % 16 == 0 && (b[0] != 0 || b[n - 1] != 0) { failures.add() }
        b[0] = UInt8(truncatingIfNeeded: n &+ t)
        b[n - 1] = UInt8(truncatingIfNeeded: n &+ t)
        ring.append((p, n))
      }
      for (p, _) in ring { goFree(p) }
      releaseThreadCache()
    }
    stop.set(1)
    while stop.value != 2 { usleep(100) }
    #expect(failures.value == 0)
    #expect(thefts.value > 0, "the thief never found a binned span")
    let after = MemStats.read(h)
    #expect(after.heapObjects == before.heapObjects)
    #expect(after.heapIdle + after.heapInuse == after.heapSys && after.heapAlloc <= after.heapInuse)
    #expect(h.checkHeap().ok)
  } }

  /// malloc_trim from one thread takes another live thread's bins.
  @Test func releasingFreeMemoryTakesEveryThreadsBins() { _withExclusiveGlobalHeapForTesting {
    let h = globalHeap()!
    let ready = UnsafeMutablePointer<UInt>.allocate(capacity: 3)
    defer { ready.deallocate() }
    ready.initialize(repeating: 0, count: 3)
    var t = pthread_t()
    #expect(pthread_create(&t, nil, { arg in
      let w = arg!.assumingMemoryBound(to: UInt.self)
      let p = goMalloc(150_000, mallocMode: true)!
      goFree(p)
      w[1] = UInt(bitPattern: p)
      atomicStoreUInt(w, 1)
      while atomicLoadUInt(w) != 2 { usleep(100) }  // alive, bins untouched, while trimmed
      return nil
    }, ready) == 0)
    while atomicLoadUInt(ready) != 1 { usleep(100) }
    let s = h.spanOf(UnsafeRawPointer(bitPattern: ready[1])!)
    #expect(s.map { atomicLoad32(&$0.pointee.state) } == spanBinned)
    goReleaseFreeMemory()
    if let s2 = h.spanOf(UnsafeRawPointer(bitPattern: ready[1])!) { #expect(atomicLoad32(&s2.pointee.state) != spanBinned) }
    atomicStoreUInt(ready, 2)
    pthread_join(t, nil)
    let m = MemStats.read(h)
    #expect(m.heapIdle + m.heapInuse == m.heapSys && m.heapAlloc <= m.heapInuse)
    #expect(h.checkHeap().ok)
  } }
}

/// A small shared state word for the threads of a test.
final class Phase: @unchecked Sendable {
  private let lock = NSLock()
  private var v = 0
  func set(_ x: Int) { lock.lock(); v = x; lock.unlock() }
  var value: Int { lock.lock(); defer { lock.unlock() }; return v }
}
