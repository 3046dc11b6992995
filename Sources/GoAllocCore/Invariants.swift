// Invariants: a whole-heap consistency check (goalloc_check_heap).
//
// Walks the page allocator (summaries against bitmaps, scavenged pages free, counters, and
// HeapIdle + HeapInuse == HeapSys), the LargeCache, every mcentral partial list (links, list tags, counts,
// flags) and the spans on it (class, allocCount against the bitmaps, arena index entries
// pointing back at the first and last page). Takes the locks one at a time, so it can run while
// other threads allocate; spans owned by a thread (current or on its ready list) or floating are not
// inspected (their owner may be changing them; floating spans are full by definition).
import CGoAllocShim

public struct HeapCheckResult {
  public var ok = true
  public var spansChecked = 0
  public var failure: StaticString = ""
  mutating func fail(_ why: StaticString) { if ok { ok = false; failure = why } }
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
      if spanOfIndex(UnsafeMutableRawPointer(pointee.arenas), s.pointee.startAddr) != s {
        r.fail("arena index does not map a cached span")
      }
    }
    if cachedPages != pointee.largeCachedPages { r.fail("LargeCache page count") }
    lockRelease(&pointee.lock)
    for i in 0..<SpanClass.count {
      let spc = SpanClass(index: i)
      let central = central(spc)
      lockAcquire(&central.pointee.lock)
      var it = central.pointee.partial
      var prev: SpanPtr? = nil
      var n = 0
      while let s = it {
        n += 1
        r.spansChecked += 1
        if s.pointee.list != listPartial { r.fail("span on a list it is not tagged with") }
        if s.pointee.prev != prev { r.fail("broken list links") }
        if s.spanClass != spc { r.fail("span on the wrong mcentral") }
        if atomicLoad32(&s.pointee.state) != spanInUse { r.fail("dead span on a list") }
        let fs = atomicLoad64(&s.pointee.freeState)
        if fs & fsFlags != fsPartial { r.fail("partial-list span without exactly PARTIAL") }
        var allocated = 0
        for i in 0..<s.pointee.nelems where s.isAllocated(i) { allocated += 1 }
        if allocated != s.pointee.allocCount { r.fail("allocCount disagrees with allocBits") }
        if spanOfIndex(UnsafeMutableRawPointer(pointee.arenas), s.pointee.startAddr) != s {
          r.fail("arena index does not map the span")
        }
        if spanOfIndex(UnsafeMutableRawPointer(pointee.arenas),
                       s.pointee.startAddr + UInt(s.pointee.npages * pageSize) - 1) != s {
          r.fail("arena index does not map the span's last page")
        }
        prev = s
        it = s.pointee.next
        if n > 1 << 26 { r.fail("list does not end"); break }
      }
      if n != central.pointee.npartial { r.fail("list count mismatch") }
      lockRelease(&central.pointee.lock)
    }
    return r
  }
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// checkHeap, with one line on stderr naming the first broken invariant.
  public func checkHeapAndReport() -> Bool {
    let r = checkHeap()
    if !r.ok { report("check_heap", r.failure, 0) }
    return r.ok
  }
}
