import Testing
import Glibc
import CGoAllocShim
@testable import GoAllocCore

/// Clear-box tests on a private heap and cache: no other test can disturb their lists.
@Suite struct SpanAndCentralTests {
  /// A free that reaches the span bitmaps at once (the free list is flushed right after it).
  func freeP(_ h: UnsafeMutablePointer<MHeap>, _ c: MCache, _ p: UInt) {
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, p, op: "free")
    c.flushLists()
    expectInvariants(h, c)
  }

  @Test func divMagicMatchesDivisionForEverySlot() {
    for c in 1..<numSizeClasses {
      let size = classSize(c), n = max(classNObjs(c), spanObjects(c)), m = UInt64(classDivMagic(c))
      for i in 0..<n {
        let off = UInt64(i * size)
        #expect((off * m) >> 32 == UInt64(i))
        #expect(((off + UInt64(size) - 1) * m) >> 32 == UInt64(i))
      }
    }
  }

  @Test func slotIndexAcceptsExactlySlotStarts() {
    let h = MHeap.create()!
    for c in 1..<numSizeClasses {
      let s = h.allocSpan(spanPages(c), spanclass: SpanClass(sizeclass: c, noscan: true))!
      let size = classSize(c), n = s.pointee.nelems
      #expect(n == spanObjects(c))
      var off = 0
      while off < s.pointee.npages * pageSize {  // every 8-byte step of the span
        let got = s.slotIndex(s.base + UInt(off))
        let want: Int? = off % size == 0 && off / size < n ? off / size : nil
        if got != want { Issue.record("class \(c) offset \(off): \(String(describing: got)) != \(String(describing: want))"); break }
        off += 8
      }
    }
  }

  @Test func spanBitScanning() {
    let h = MHeap.create()!
    let s = h.allocSpan(1, spanclass: SpanClass(sizeclass: 1, noscan: true))!  // 8 B: 1024 slots
    // Take every slot through the fast path where it can, the slow path at word boundaries.
    var got: [Int] = []
    while true {
      if let p = s.nextFreeFast() { got.append(Int(p - s.base) / 8); continue }
      let i = s.nextFreeIndex()
      if i == s.pointee.nelems { break }
      s.pointee.allocCount += 1
      got.append(i)
    }
    #expect(got == Array(0..<1024))
    #expect(s.pointee.allocCount == 1024)
    // Free slots 5, 64, 1000 (as frees do), fold, and find exactly those again.
    for i in [5, 64, 1000] {
      _ = atomicOr64(s.freeWord(i >> 6), 1 << UInt64(i & 63))
      atomicAdd64(&s.pointee.freeState, fsPendingOne)
    }
    #expect(s.pendingFrees == 3)
    #expect(s.fold(h) == 3)
    #expect(s.pendingFrees == 0 && s.pointee.allocCount == 1021 && s.pointee.freeindex == 0)
    var again: [Int] = []
    while true {
      let i = s.nextFreeIndex()
      if i == s.pointee.nelems { break }
      again.append(i)
    }
    #expect(again == [5, 64, 1000])
  }

  @Test func centralMovesSpansBetweenLists() {
    let h = MHeap.create()!
    let c = MCache.create(h)!, other = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)  // 64 B, 128 per span
    let central = h.central(spc)
    var first: [UInt] = []
    for _ in 0..<128 { first.append(c.nextFree(spc)) }
    #expect(Set(first).count == 128)
    let span1 = c.alloc[spc.index]
    let p = c.nextFree(spc)  // exhausts span 1: it floats (full, on no list, no flag)
    #expect(c.alloc[spc.index] != span1 && p != 0)
    #expect(atomicLoad64(&span1.pointee.freeState) & fsFlags == 0)
    #expect(span1.pointee.owner == 0 && span1.pointee.home == UInt(bitPattern: c.raw))
    #expect(central.pointee.npartial == 0)
    // The first free into the floating span claims it into the freeing thread's ready list, once.
    freeP(h, c, first[10])
    freeP(h, c, first[20])
    #expect(atomicLoad64(&span1.pointee.freeState) & fsFlags == fsCached)
    #expect(span1.pointee.place == placeReady && c.readyCounts[spc.index] == 1 && central.pointee.npartial == 0)
    // The claiming free was remote-style, folded at the claim; the second one is the owner's.
    #expect(span1.pendingFrees == 0 && span1.pointee.localFreed == 1 && span1.pointee.allocCount == 127)
    #expect(h.checkHeap().ok)
    // Exhaust span 2; the refill takes span 1 from the ready list and hands out exactly the freed slots.
    let span2 = c.alloc[spc.index]
    for _ in 0..<127 { _ = c.nextFree(spc) }
    let r1 = c.nextFree(spc), r2 = c.nextFree(spc)
    #expect(Set([r1, r2]) == Set([first[10], first[20]]))
    #expect(c.alloc[spc.index] == span1 && c.readyCounts[spc.index] == 0)
    // Another thread's free puts span 2 on the mcentral's partial list (it keeps no span of others).
    #expect(atomicLoad64(&span2.pointee.freeState) & fsFlags == 0)
    freeP(h, other, span2.pointee.startAddr)
    #expect(other.readyCounts[spc.index] == 0 && central.pointee.npartial == 1)
    other.releaseAll()
    #expect(central.pointee.npartial == 1)
    // A free by a thread without a cache puts a floating span on the mcentral's partial list.
    let span3 = c.alloc[spc.index]
    c.alloc[spc.index] = h.pointee.emptySpan
    for _ in 0..<span3.pointee.nelems - span3.pointee.allocCount { _ = span3.nextFreeIndex(); span3.pointee.allocCount += 1 }
    central.uncacheSpan(h, span3)
    #expect(atomicLoad64(&span3.pointee.freeState) & fsFlags == 0)
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), nil, span3.pointee.startAddr, op: "free")
    #expect(central.pointee.npartial == 2)
    #expect(h.checkHeap().ok)
  }

  @Test func otherThreadsSpansGoToTheCentral() {
    let h = MHeap.create()!
    let producer = MCache.create(h)!, consumer = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)  // 64 B, 128 per span
    var firsts: [UInt] = []
    for _ in 0..<6 {  // fill that many spans; each floats when exhausted
      firsts.append(producer.nextFree(spc))
      for _ in 0..<127 { _ = producer.nextFree(spc) }
    }
    _ = producer.nextFree(spc)
    for q in firsts.prefix(3) { freeP(h, consumer, q) }  // one by one
    for q in firsts.dropFirst(3) { freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), consumer.raw, q, op: "free") }
    consumer.flushLists()  // three in one flush: queued under one lock
    #expect(consumer.readyCounts[spc.index] == 0)
    #expect(h.central(spc).pointee.npartial == 6)
    #expect(h.checkHeap().ok)
  }

  @Test func aClassesFirstSpansAreGoSizedLaterOnesLarger() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let sc = sizeToClass(1024, mallocMode: true)
    let spc = SpanClass(sizeclass: sc, noscan: true)
    #expect(classNObjs(sc) == 8 && spanObjects(sc) == 16)
    var spans: [SpanPtr] = []
    while spans.count < 3 {
      _ = c.nextFree(spc)
      if spans.last != c.alloc[spc.index] { spans.append(c.alloc[spc.index]) }
    }
    #expect(spans.map { $0.pointee.nelems } == [8, 8, 16])
    #expect(spans.map { $0.pointee.npages } == [classNPages(sc), classNPages(sc), spanPages(sc)])
  }

  @Test func refillsPassOverReadySpansWithFewFrees() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)  // 64 B, 128 per span: 16 frees are enough
    var spans: [[UInt]] = []
    for _ in 0..<6 {
      var slots: [UInt] = []
      for _ in 0..<128 { slots.append(c.nextFree(spc)) }
      spans.append(slots)
    }
    _ = c.nextFree(spc)  // the six filled spans float; a seventh is current
    for k in 0..<5 { freeP(h, c, spans[k][0]) }  // five ready spans, one free slot each
    #expect(c.readyCounts[spc.index] == 5)
    let before = h.pointee.spansInUse
    let current = c.alloc[spc.index]
    while c.alloc[spc.index] == current { _ = c.nextFree(spc) }
    // The refill passed over them and took a fresh span from the mcentral.
    #expect(h.pointee.spansInUse == before + 1 && c.readyCounts[spc.index] == 5)
    // A ready span with an eighth of its slots free is taken (the list turned: the first span
    // is second now, within the four a refill looks at).
    for q in spans[0].dropFirst().prefix(15) { freeP(h, c, q) }
    let fresh = c.alloc[spc.index]
    while c.alloc[spc.index] == fresh { _ = c.nextFree(spc) }
    #expect(h.pointee.spansInUse == before + 1 && c.readyCounts[spc.index] == 4)
    #expect(c.alloc[spc.index].pointee.startAddr == spans[0][0] && c.alloc[spc.index].pointee.allocCount == 128 - 16 + 1)
    #expect(h.checkHeap().ok)
  }

  @Test func ownFreesEmptyingAReadySpanGiveItBack() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)  // 64 B, 128 per span
    var first: [UInt] = [], second: [UInt] = []
    for _ in 0..<128 { first.append(c.nextFree(spc)) }
    let span1 = c.alloc[spc.index]
    for _ in 0..<128 { second.append(c.nextFree(spc)) }
    let span2 = c.alloc[spc.index]
    _ = c.nextFree(spc)  // span 3 is current; spans 1 and 2 float
    freeP(h, c, second[0])
    for q in first.dropLast() { freeP(h, c, q) }
    #expect(span1.pointee.place == placeReady && span2.pointee.place == placeReady)
    freeP(h, c, first.last!)
    // The last free left span 1 without objects while span 2 is ready too: it went to the
    // mcentral, and the mheap reclaims it.
    #expect(span1.pointee.owner == 0 && c.readyCounts[spc.index] == 1)
    #expect(h.central(spc).pointee.npartial == 1)
    #expect(h.reclaim() >= 1)
    #expect(h.pointee.spansInUse == 2)
    // Emptying the only ready span keeps it (the next refill would fetch it straight back).
    for q in second.dropFirst() { freeP(h, c, q) }
    #expect(span2.pointee.place == placeReady && span2.pointee.owner == UInt(bitPattern: c.raw))
    #expect(h.checkHeap().ok)
  }

  @Test func remoteFreesToACachedSpanAreFoldedByTheOwner() {
    let h = MHeap.create()!
    let owner = MCache.create(h)!, other = MCache.create(h)!
    let spc = SpanClass(sizeclass: 10, noscan: false)  // 128 B, 64 per span
    var ptrs: [UInt] = []
    for _ in 0..<64 { ptrs.append(owner.nextFree(spc)) }
    let span = owner.alloc[spc.index]
    freeP(h, other, ptrs[3])  // from another "thread": pending, no list move (the span is cached)
    #expect(span.pendingFrees == 1)
    #expect(h.central(spc).pointee.npartial == 0)
    // The owner's span is exhausted: it folds instead of refilling.
    let q = owner.nextFree(spc)
    #expect(q == ptrs[3] && owner.alloc[spc.index] == span)
  }

  @Test func largeObjectsReturnTheirPagesAndMerge() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let before = h.pointee.pages.freePages
    let a = UnsafeMutableRawPointer(bitPattern: largeAlloc(c, 100_000, noscan: true, zero: false, alignPages: 1))!
    let b = UnsafeMutableRawPointer(bitPattern: largeAlloc(c, 200_000, noscan: true, zero: false, alignPages: 1))!
    #expect(h.spanOf(a)!.pointee.npages == 13)
    #expect(h.spanOf(b + 199_999) == h.spanOf(b))
    // Freed by a thread without a cache (a thread's own frees of spans this size go to its
    // LargeBins: LargeBinsTests).
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), nil, UInt(bitPattern: a), op: "free")
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), nil, UInt(bitPattern: b), op: "free")
    // Both are kept whole by the LargeCache, out of use and idle.
    #expect(h.pointee.largeCached == 2 && h.pointee.largeCachedPages == 38 && h.pointee.pagesInUse == 0)
    #expect(before == 0 && h.checkHeap().ok)
    // A request of another size gives them back to the page heap first, where the two runs
    // merge: a run as large as both fits where a was.
    let d = UnsafeMutableRawPointer(bitPattern: largeAlloc(c, 13 * 8192 + 25 * 8192, noscan: true, zero: false, alignPages: 1))!
    #expect(d == a && h.pointee.largeCached == 0)
    #expect(h.pointee.pages.freePages == h.pointee.pages.totalPages - 38)
    #expect(h.checkHeap().ok)
  }

  @Test func theLargeCacheHandsBackASpanOfTheSamePageCount() {
    let h = MHeap.create()!
    h.debugFlags = GOALLOC_DEBUG_PARSED | GOALLOC_DEBUG_BADFREE_WARN
    let c = MCache.create(h)!
    func free(_ p: UInt) { freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, p, op: "free") }
    let a = largeAlloc(c, 1 << 20, noscan: true, zero: false, alignPages: 1)
    let s = h.spanOf(UnsafeRawPointer(bitPattern: a)!)!
    UnsafeMutablePointer<UInt8>(bitPattern: a)!.update(repeating: 7, count: 1 << 20)
    free(a)
    #expect(h.pointee.largeCached == 1 && atomicLoad32(&s.pointee.state) == spanCached)
    let m = MemStats.read(h)
    #expect(m.heapIdle + m.heapInuse == m.heapSys && m.heapInuse == 0)
    // A cached block is not live: freeing it again is reported, and it stays cached.
    free(a)
    #expect(atomicLoad64(&h.pointee.badFrees) == 1 && h.pointee.largeCached == 1)
    // The same page count: the same span, as it was (not zeroed unless asked for).
    let b = largeAlloc(c, (1 << 20) - 100, noscan: false, zero: false, alignPages: 1)
    #expect(b == a && h.spanOf(UnsafeRawPointer(bitPattern: b)!) == s && h.pointee.largeCached == 0)
    #expect(Int(s.pointee.spanclass) == 0 && h.pointee.pagesInUse == 128 && h.checkHeap().ok)
    free(b)
    let z = largeAlloc(c, 1 << 20, noscan: true, zero: true, alignPages: 1)
    let zp = UnsafeMutablePointer<UInt8>(bitPattern: z)!
    #expect(z == a && zp[0] == 0 && zp[(1 << 20) - 1] == 0)
    free(z)
    // A scavenge gives cached spans back to the page heap (and their pages to the OS).
    h.scavenge(maxBytes: Int.max)
    #expect(h.pointee.largeCached == 0 && h.pointee.pages.freePages == h.pointee.pages.totalPages)
    #expect(h.pointee.pages.scavPages == h.pointee.pages.totalPages)
    // Over the cache's size: straight back to the page heap.
    let big = largeAlloc(c, (largeCacheMaxPages + 1) * pageSize, noscan: true, zero: false, alignPages: 1)
    free(big)
    #expect(h.pointee.largeCached == 0 && h.pointee.pagesInUse == 0)
    // At most largeCacheSlots spans, the oldest given back first.
    // (Freed without a cache: a thread's own frees of spans this size go to its LargeBins.)
    let ps = (1...largeCacheSlots + 1).map { largeAlloc(c, $0 * 5 * pageSize, noscan: true, zero: false, alignPages: 1) }
    for p in ps { freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), nil, p, op: "free") }
    #expect(h.pointee.largeCached == largeCacheSlots && h.spanOf(UnsafeRawPointer(bitPattern: ps[0])!) == nil)
    #expect(atomicLoad64(&h.pointee.badFrees) == 1 && h.checkHeap().ok)
  }

  @Test func largeSpansResizeInPlace() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let a = largeAlloc(c, 10 * pageSize, noscan: true, zero: false, alignPages: 1)
    let s = h.spanOf(UnsafeRawPointer(bitPattern: a)!)!
    #expect(h.resizeLarge(s, to: 20))  // the pages after it are free
    #expect(s.pointee.npages == 20 && s.pointee.elemsize == 20 * pageSize)
    #expect(h.spanOf(UnsafeRawPointer(bitPattern: a + UInt(19 * pageSize))!) == s)
    let b = largeAlloc(c, 5 * pageSize, noscan: true, zero: false, alignPages: 1)
    #expect(b == a + UInt(20 * pageSize))
    #expect(!h.resizeLarge(s, to: 21))  // b is in the way: nothing changes
    #expect(s.pointee.npages == 20)
    #expect(h.resizeLarge(s, to: 8))    // shrinking frees the tail
    #expect(h.spanOf(UnsafeRawPointer(bitPattern: a + UInt(8 * pageSize))!) == nil)
    #expect(h.pointee.pagesInUse == 8 + 5)
    #expect(h.checkHeap().ok)
  }

  @Test func spanOfAnswersNotOursForForeignAddresses() {
    let h = MHeap.create()!
    var local = 42
    let lp = withUnsafeMutablePointer(to: &local) { UnsafeRawPointer($0) }
    let gp = withUnsafeMutablePointer(to: &someGlobal) { UnsafeRawPointer($0) }
    #expect(h.spanOf(lp) == nil)
    #expect(h.spanOf(gp) == nil)
    let sys = malloc(64)!
    #expect(h.spanOf(sys) == nil)
    free(sys)
    #expect(spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), 0) == nil)
    #expect(spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), 0xffff_8000_0000_1000) == nil)
  }

  @Test func freshSpansAreNotZeroedAgain() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)
    let p = c.nextFree(spc)
    #expect(c.alloc[spc.index].pointee.needzero == 0)  // fresh from mmap
    UnsafeMutableRawPointer(bitPattern: p)!.storeBytes(of: UInt64.max, as: UInt64.self)
    freeP(h, c, p)
    for _ in 0..<128 { _ = c.nextFree(spc) }  // fold happens; slot p comes back dirty
    #expect(c.alloc[spc.index].pointee.needzero == 1)
  }
}

@Suite struct MSpanLayoutTests {
  @Test func hotLinesAreSeparate() {
    #expect(MemoryLayout<MSpan>.offset(of: \MSpan.startAddr) == 64)
    #expect(MemoryLayout<MSpan>.offset(of: \MSpan.freeState) == 120)
    #expect(MemoryLayout<MSpan>.stride == 128)
  }
}

/// Empty spans go back to the page heap (at most MCentral.maxParkedEmpty stay parked per class).
@Suite struct EmptySpanTests {
  @Test func emptySpansBeyondTheParkedFewGoBackToThePageHeap() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)  // 64 B
    var ps: [UInt] = []
    for _ in 0..<(128 * 40) { ps.append(mallocSmall(c, spc, 64, zero: false)) }  // about 40 spans
    let spansFull = h.pointee.spansInUse
    #expect(spansFull >= 40)
    for p in ps { freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, p, op: "free") }
    c.releaseAll()
    // Every span is empty: the class keeps at most two parked, the rest are free pages again.
    #expect(h.pointee.spansInUse <= MCentral.maxParkedEmpty, "\(h.pointee.spansInUse) spans still in use")
    #expect(h.central(spc).pointee.nempty == h.pointee.spansInUse)
    expectInvariants(h, nil)
    // A new cache takes a parked span first, without the heap.
    let d = MCache.create(h)!
    let q = mallocSmall(d, spc, 64, zero: false)
    #expect(q != 0 && h.central(spc).pointee.nempty == h.pointee.spansInUse - 1)
    expectInvariants(h, d)
  }
}
