// Invariants: one consistency check per structure, and the whole-heap check built from them
// (goalloc_check_heap, GOALLOC_DEBUG=check=1). See Malloc.swift for an overview.
//
// Each structure states its invariants in its own file's header; the check of each lives here:
//   PageAlloc.checkInvariants    summaries against bitmaps, counters (PageAlloc.swift)
//   MSpan.checkInvariants        geometry against its class, bitmaps against counts
//   MCentral.checkInvariants     partial-list links, tags, counts and flags
//   MCache.checkInvariants       current spans, ready lists, free lists, tiny block, LargeBins
//                                (owner only)
//   GCState.checkLists           the collected spans' lists (MGCCentral): links, tags, sweep
//                                states against sweepgen, counts
//   MHeap.checkHeap              all of the above that another thread may check, plus the span
//                                registry, the arena index and the LargeCache
// The heap check takes one lock at a time, so it runs while other threads allocate. A span a
// thread owns (current or ready) or one floating (full, owned by nobody: a free may claim it at
// any moment) is checked for what cannot change under it (geometry, index entries, registry);
// its counts only by its owner (`MCache.checkInvariants`, run by GOALLOC_DEBUG=check=1 on each
// thread's own cache every 256 refills and at exit).
import CGoAllocShim

public struct HeapCheckResult {
  public var ok = true
  public var spansChecked = 0
  public var failure: StaticString = ""
  mutating func fail(_ why: StaticString) { if ok { ok = false; failure = why } }
}

extension UnsafeMutablePointer where Pointee == MSpan {
  /// What holds for any span that holds pages, whoever owns it: class, geometry, bitmaps set up.
  func checkGeometry(_ h: UnsafeMutablePointer<MHeap>, _ r: inout HeapCheckResult) {
    let spc = spanClass
    if spc.index >= SpanClass.count { return r.fail("span class out of range") }
    if pointee.bits == nil { return r.fail("span without bitmaps") }
    if pointee.npages <= 0 { r.fail("span without pages") }
    let usable = pointee.npages - Int(pointee.guardPages)
    if spc.isLarge {
      if pointee.nelems != 1 || pointee.elemsize != usable * pageSize { r.fail("large span geometry") }
    } else {
      let sc = spc.sizeclass
      if pointee.elemsize != classSize(sc) || divMul != UInt64(classDivMagic(sc)) { r.fail("span slot size") }
      if pointee.nelems != usable * pageSize / pointee.elemsize { r.fail("span slot count") }
      if usedWords > bitWords { r.fail("span bitmaps too small") }
      // (A tiny span's block counts lie right after bitmaps of this size: MSpan.tinyCounts.)
      if Int(pointee.bitsOrder) != spanBitsOrder(pointee.nelems) { r.fail("span bitmaps not sized for its slots") }
    }
    if highWater > UInt(pointee.nelems) { r.fail("highWater past the span") }
    let arenas = UnsafeMutableRawPointer(h.pointee.arenas)
    if spanOfIndex(arenas, pointee.startAddr) != self { r.fail("arena index does not map the span") }
    if spanOfIndex(arenas, pointee.startAddr + UInt(pointee.npages * pageSize) - 1) != self {
      r.fail("arena index does not map the span's last page")
    }
  }

  /// The counts of a span nobody changes meanwhile (its owner, or under its mcentral's lock):
  /// allocCount against the bitmaps, freeindex, the bits past nelems.
  func checkCounts(_ r: inout HeapCheckResult) {
    if pointee.freeindex < 0 || pointee.freeindex > pointee.nelems { r.fail("freeindex out of range") }
    var allocated = 0
    for i in 0..<pointee.nelems where isAllocated(i) { allocated += 1 }
    if allocated != pointee.allocCount { r.fail("allocCount disagrees with allocBits") }
    let tail = pointee.nelems & 63
    if !isLarge && tail != 0 && ~allocWord(usedWords - 1).pointee & ~((1 << UInt64(tail)) - 1) != 0 {
      r.fail("slots past nelems not marked allocated")
    }
  }
}

extension UnsafeMutablePointer where Pointee == MCentral {
  /// The partial list: links, tags, class, flags, and each span's counts. Takes the central lock.
  func checkInvariants(_ h: UnsafeMutablePointer<MHeap>, _ spc: SpanClass, _ r: inout HeapCheckResult) {
    lockAcquire(&pointee.lock)
    defer { lockRelease(&pointee.lock) }
    var it = pointee.partial
    var prev: SpanPtr? = nil
    var n = 0
    while let s = it {
      n += 1
      r.spansChecked += 1
      if s.pointee.list != listPartial { r.fail("span on a list it is not tagged with") }
      if s.pointee.prev != prev { r.fail("broken list links") }
      if s.spanClass != spc { r.fail("span on the wrong mcentral") }
      if atomicLoad32(&s.pointee.state) != spanInUse { r.fail("dead span on a list") }
      if atomicLoad64(&s.pointee.freeState) & fsFlags != fsPartial { r.fail("partial-list span without exactly PARTIAL") }
      s.checkCounts(&r)
      prev = s
      it = s.pointee.next
      if n > 1 << 26 { r.fail("list does not end"); break }
    }
    if n != pointee.npartial { r.fail("list count mismatch") }
    if pointee.nempty < 0 || pointee.nempty > MCentral.maxParkedEmpty { r.fail("parked empty count out of range") }
  }
}

extension MCache {
  /// This cache's own state; only its owning thread may call it (or anyone while that thread is
  /// stopped). Current spans, ready lists (links, places, counts), every span's counts, the free
  /// lists (depths, each object a handed-out slot of the list's class), the tiny block's count.
  public func checkInvariants() -> HeapCheckResult {
    var r = HeapCheckResult()
    let h = heap
    let empty = h.pointee.emptySpan
    for i in 0..<SpanClass.count {
      let spc = SpanClass(index: i)
      let s = alloc[i]
      if s != empty {
        r.spansChecked += 1
        if s.spanClass != spc { r.fail("current span of another class") }
        if s.pointee.place != placeCurrent { r.fail("current span not placed current") }
        if atomicLoadRelaxedUInt(&s.pointee.owner) != ownerTag(spc) { r.fail("current span owned by another") }
        if atomicLoadRelaxedUInt(&s.pointee.home) != MCache.homeTag(ownerTag(spc)) { r.fail("current span at home elsewhere") }
        if atomicLoad64(&s.pointee.freeState) & fsFlags != fsCached { r.fail("current span without CACHED") }
        s.checkGeometry(h, &r)
        s.checkCounts(&r)
      }
      var n = 0
      for k in 0..<2 {  // the ready list, then the sparse list (MemoryLimit)
        let place = k == 0 ? placeReady : placeSparse
        guard let head = (k == 0 ? readyHeads : sparseHeads)[i] else { continue }
        var s = head
        repeat {
          n += 1
          r.spansChecked += 1
          if s.spanClass != spc { r.fail("ready span of another class") }
          if s.pointee.place != place { r.fail("ready span not placed ready (or sparse)") }
          if atomicLoadRelaxedUInt(&s.pointee.owner) != ownerTag(spc) { r.fail("ready span owned by another") }
          if atomicLoadRelaxedUInt(&s.pointee.home) != MCache.homeTag(ownerTag(spc)) { r.fail("ready span at home elsewhere") }
          if s.pointee.onext.unsafelyUnwrapped.pointee.oprev != s { r.fail("broken ready-list links") }
          if atomicLoad64(&s.pointee.freeState) & fsFlags != fsCached { r.fail("ready span without CACHED") }
          s.checkGeometry(h, &r)
          s.checkCounts(&r)
          s = s.pointee.onext.unsafelyUnwrapped
        } while s != head && n <= 1 << 20
      }
      if n != Int(readyCounts[i]) { r.fail("ready count mismatch") }
      if MCache.hasList(spc) { checkList(spc, &r) }
      if header.pointee.lean && (header.pointee.secure || listLength(spc) != 0) { r.fail("lean cache with an open list") }
    }
    if header.pointee.tiny != 0 {
      guard let s = header.pointee.tinySpan, s.spanClass.isTiny else { r.fail("tiny block outside a tiny span"); return r }
      if s.pointee.tinyCounts.unsafelyUnwrapped[s.objIndex(header.pointee.tiny)] == 0 { r.fail("tiny block held with count 0") }
    }
    checkBins(&r)
    return r
  }

  /// LargeBins: each slot empty or a binned large span of its bin's page count, none above the
  /// top; the slots' pages and spans are what the counters say the bins hold, within the budget.
  /// Takes the caches lock (no thief meanwhile).
  func checkBins(_ r: inout HeapCheckResult) {
    let h = heap
    lockAcquire(&h.pointee.caches.pointee.lock)
    defer { lockRelease(&h.pointee.caches.pointee.lock) }
    var pages = 0, spans = 0
    for np in 1...binMaxPages {
      let b = bin(np)
      if Int(b.pointee) > binSlots { r.fail("LargeBins top past its slots") }
      for i in 1...binSlots {
        guard let s = SpanPtr(bitPattern: atomicLoadUInt(b + i)) else { continue }
        if i > Int(b.pointee) { r.fail("LargeBins slot above the top") }
        if atomicLoad32(&s.pointee.state) != spanBinned || !s.isLarge || s.pointee.npages != np {
          r.fail("LargeBins holds a span that is not a binned large span of its page count")
        }
        s.checkGeometry(h, &r)
        pages += np
        spans += 1
      }
    }
    let w = binWords
    let binnedSpans = w[LargeBins.frees] &- w[LargeBins.allocs] &- w[LargeBins.spilledSpans] &- w[LargeBins.stolenSpans]
    if pages != binnedPages || UInt64(spans) != binnedSpans { r.fail("LargeBins counts disagree with the slots") }
    if pages > binBudgetPages { r.fail("LargeBins over the budget") }
  }

  /// Class spc's free list: exactly its recorded length of objects, each a handed-out slot of a
  /// span of class spc with the listed mark and a valid link, the last one linking to nothing.
  func checkList(_ spc: SpanClass, _ r: inout HeapCheckResult) {
    let l = list(spc)
    let key = l[ClassGroup.key], decode = l[ClassGroup.decode]
    let len = listLength(spc)
    if len < 0 || len > MCache.listLimit(spc) { return r.fail("free list longer than its limit") }
    if l[ClassGroup.encode] &* decode != 1 { return r.fail("free list link multipliers do not match") }
    var a = l[ClassGroup.head]
    for _ in 0..<len {
      guard checkedListed(spc, a, index: header.pointee.arenas) != nil,
            UnsafePointer<UInt>(bitPattern: a).unsafelyUnwrapped[ListedObject.mark] == key else {
        return r.fail("free list holds an object that is not a listed slot of its class")
      }
      a = UnsafePointer<UInt>(bitPattern: a).unsafelyUnwrapped[ListedObject.next] &* decode
    }
    if a != 0 { r.fail("free list longer than its recorded length") }
  }
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Every GC list (MGCCentral), under every collected central's lock at once (taken in
  /// lockAll's order): each span tagged with its list, in use (a large one may be being freed),
  /// of the list's shape, held by no cache, swept or unswept as its list's parity says, with a
  /// free slot on a partial list and counts that match its bitmaps; the counters match.
  func checkLists(_ h: UnsafeMutablePointer<MHeap>, _ r: inout HeapCheckResult) {
    for shape in 0..<Self.gcShapes { lockAcquire(&gcCentral(h, shape).pointee.lock) }
    let sg = pointee.sweepgen
    let sp = sweptParity(sg)
    var listed: UInt64 = 0, pages: UInt64 = 0, unswept: UInt64 = 0
    for shape in 0..<Self.gcShapes {
      for kind in 0..<4 {
        let full = kind >= 2, parity = kind & 1
        var prev: SpanPtr? = nil
        var it = listHead(shape, full: full, parity: parity).pointee
        while let s = it {
          it = s.pointee.next
          if s.pointee.list != gcListCode(full: full, parity: parity) { r.fail("GC span on a list it is not tagged with") }
          if s.pointee.prev != prev { r.fail("broken GC list links") }
          prev = s
          let state = atomicLoad32(&s.pointee.state)
          if state != spanInUse && !(s.isLarge && state == spanFreeing) { r.fail("dead span on a GC list") }
          if s.pointee.collected == 0 || Int(s.pointee.spanclass) != shape { r.fail("GC list holds a span of another shape") }
          if atomicLoadRelaxedUInt(&s.pointee.owner) != 0 { r.fail("GC list holds a cached span") }
          if atomicLoad32(&s.pointee.sweepgen) != (parity == sp ? sg : sg &- 2) { r.fail("GC span's sweepgen disagrees with its list") }
          if !s.isLarge {
            if !full && s.pointee.allocCount >= s.pointee.nelems { r.fail("full span on a GC partial list") }
            s.checkCounts(&r)
          }
          listed += 1
          pages &+= UInt64(s.pointee.npages)
          if parity != sp { unswept += 1 }
          if listed > 1 << 26 { r.fail("GC list does not end"); break }
        }
      }
    }
    if listed != atomicLoad64(&pointee.listed) || pages != atomicLoad64(&pointee.listedPages) {
      r.fail("GC list counts disagree with the lists")
    }
    if unswept != atomicLoad64(&pointee.unswept) { r.fail("unswept count disagrees with the lists") }
    for shape in (0..<Self.gcShapes).reversed() { lockRelease(&gcCentral(h, shape).pointee.lock) }
  }
}

extension UnsafeMutablePointer where Pointee == MHeap {
  public func checkHeap() -> HeapCheckResult {
    var r = HeapCheckResult()
    lockAcquire(&pointee.lock)
    if !pointee.pages.checkInvariants() { r.fail("page allocator summaries or counters") }
    let idle = pointee.pages.freePages + pointee.largeCachedPages
    if (pointee.pagesInUse + idle) != pointee.pages.totalPages { r.fail("HeapInuse + HeapIdle != HeapSys") }
    var cachedPages = 0
    for i in 0..<pointee.largeCached {
      guard let s = pointee.largeSlots[i] else { r.fail("LargeCache slot empty"); break }
      cachedPages += s.pointee.npages
      if atomicLoad32(&s.pointee.state) != spanCached || !s.isLarge { r.fail("LargeCache holds a span not cached") }
    }
    if cachedPages != pointee.largeCachedPages { r.fail("LargeCache page count") }
    // Every span holding pages (the walk of the spans tables), each in use (or cached).
    var spans = 0, pages = 0
    forEachSpanLocked { s in
      spans += 1
      let state = atomicLoad32(&s.pointee.state)
      if state == spanInUse || state == spanFreeing || state == spanBinned { pages += s.pointee.npages }
      else if state != spanCached { r.fail("a dead span in the spans tables") }
      s.checkGeometry(self, &r)
    }
    if spans != pointee.spansInUse + pointee.largeCached { r.fail("span walk count") }
    if pages != pointee.pagesInUse { r.fail("pages of the walked spans != pagesInUse") }
    lockRelease(&pointee.lock)
    for i in 0..<SpanClass.count {
      let spc = SpanClass(index: i)
      central(spc).checkInvariants(self, spc, &r)
    }
    // The GC lists are the global heap's (their locks are its centrals'): a private heap has none.
    if let gc = gcExisting, self == globalHeap() { gc.checkLists(self, &r) }
    return r
  }

  /// checkHeap, with one line on stderr naming the first broken invariant.
  public func checkHeapAndReport() -> Bool {
    let r = checkHeap()
    if !r.ok { report("check_heap", r.failure, 0) }
    return r.ok
  }

  /// checkHeap and, when the calling thread has a cache of this heap, that cache's own check.
  public func checkHeapAndOwnCacheAndReport() -> Bool {
    if !checkHeapAndReport() { return false }
    guard let raw = existingThreadCache(), MCache(raw).heap == self else { return true }
    let r = MCache(raw).checkInvariants()
    if !r.ok { report("check_heap", r.failure, 0) }
    return r.ok
  }
}
