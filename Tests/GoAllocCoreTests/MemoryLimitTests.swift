import Testing
import Glibc
import CGoAllocShim
@testable import GoAllocCore

/// The memory limit, clear-box on a private heap and cache: when the heap is near or over its
/// limit, what a freed span and a lean cache do (Scavenger.swift, MemoryLimit.swift).
@Suite struct MemoryLimitTests {
  func setLimit(_ h: UnsafeMutablePointer<MHeap>, _ bytes: Int) {
    atomicStore64(&h.pointee.scavenger.pointee.memLimit, UInt64(bytes))
    lockAcquire(&h.pointee.lock)
    h.updateNearLimitLocked()
    lockRelease(&h.pointee.lock)
  }
  func state(_ h: UnsafeMutablePointer<MHeap>) -> UInt32 { atomicLoad32(&h.pointee.scavenger.pointee.nearLimit) }
  func free(_ h: UnsafeMutablePointer<MHeap>, _ c: MCache, _ p: UInt) {
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, p, op: "free")
  }

  @Test func nearLimitFollowsTheRetainedPagesAndFreedSpansAreReleasedAtOnce() {
    let h = MHeap.create()!
    setLimit(h, 64 * pageSize)
    var spans: [SpanPtr] = []
    for _ in 0..<51 { spans.append(h.allocSpan(1, spanclass: .large(noscan: true))!) }
    #expect(state(h) == 0)  // fresh pages are released ones: only the spans count
    spans.append(h.allocSpan(1, spanclass: .large(noscan: true))!)
    #expect(state(h) == 1)  // 52 pages: 13/16 of the limit
    for _ in 0..<12 { spans.append(h.allocSpan(1, spanclass: .large(noscan: true))!) }
    #expect(state(h) == 2)  // 64: at the limit
    // Near the limit a span given back is released at once (it does not count as retained).
    let scav = h.pointee.pages.scavPages
    memset(UnsafeMutableRawPointer(bitPattern: spans.last!.pointee.startAddr)!, 0xEE, pageSize)
    h.freeSpan(spans.removeLast())
    #expect(h.pointee.pages.scavPages == scav + 1)
    #expect(atomicLoad64(&h.pointee.scavenger.pointee.releasedAtFree) == UInt64(pageSize))
    #expect(state(h) == 1)
    // It stays near down to 3/4 of the limit (48 pages), then it is not.
    while state(h) != 0 { h.freeSpan(spans.removeLast()) }
    #expect(spans.count == 47)
    #expect(h.pointee.pages.checkInvariants() && h.checkHeap().ok)
    // Away from the limit a freed span's pages stay until the scavenger comes.
    let scav2 = h.pointee.pages.scavPages
    h.freeSpan(spans.removeLast())
    #expect(h.pointee.pages.scavPages == scav2)
    // Live objects filling the limit (the tick's measure): never near, however many pages the
    // heap holds; below that, near again.
    for _ in 0..<20 { spans.append(h.allocSpan(1, spanclass: .large(noscan: true))!) }
    #expect(state(h) == 2)
    h.noteLiveBytes(UInt64(64 * pageSize))
    #expect(state(h) == 0)
    spans.append(h.allocSpan(1, spanclass: .large(noscan: true))!)
    #expect(state(h) == 0)
    h.noteLiveBytes(UInt64(63 * pageSize))
    #expect(state(h) == 2)
    setLimit(h, 0)
    #expect(state(h) == 0)
  }

  @Test func aLeanCacheFreesIntoSpansAndFillsTheFullerOnesFirst() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)  // 64 B, 128 per span
    var spans: [[UInt]] = []
    for _ in 0..<4 {
      var slots: [UInt] = []
      for _ in 0..<128 { slots.append(c.nextFree(spc)) }
      spans.append(slots)
    }
    let span = spans.map { h.spanOf(UnsafeRawPointer(bitPattern: $0[0])!)! }
    _ = c.nextFree(spc)  // the four filled spans float; a fifth is current
    let fifth = c.alloc[spc.index]
    free(h, c, spans[0][0])
    #expect(c.listLength(spc) == 1)  // no limit: onto the list
    setLimit(h, pageSize)  // the heap is over it
    #expect(state(h) == 2)
    // The cache notices at its next slow path: a free flushes and closes its lists.
    free(h, c, spans[0][1])
    #expect(c.header.pointee.lean && c.listLength(spc) == 0)
    #expect(span[0].pointee.place == placeReady && span[0].pointee.localFreed == 1)
    expectInvariants(h, c)
    // A ready span left at least 1/4 free (here half) moves to the sparse list; near the limit,
    // its kernel pages holding only free slots are released (the first 4 KiB: slots 0..63).
    let inSpans = atomicLoad64(&h.pointee.scavenger.pointee.releasedInSpans)
    for q in spans[1].prefix(64) { free(h, c, q) }
    #expect(span[1].pointee.place == placeSparse && c.readyCounts[spc.index] == 2)
    if goalloc_os_page_size() == 4096 {
      #expect(atomicLoad64(&h.pointee.scavenger.pointee.releasedInSpans) - inSpans == 4096)
      #expect(UnsafePointer<UInt>(bitPattern: spans[1][0])![1] == 0)  // its free mark went with the page
    }
    for q in spans[2].prefix(31) { free(h, c, q) }  // 31 free slots (1/4 is 32): still ready
    #expect(span[2].pointee.place == placeReady)
    free(h, c, spans[2][31])  // 32: sparse too, newer
    #expect(span[2].pointee.place == placeSparse && c.readyCounts[spc.index] == 3)
    expectInvariants(h, c)
    // Refills take the ready span with its one free slot (near the limit none is passed over),
    // then the newest sparse span (the fullest, roughly), then the older one, before any new span.
    let inUse = h.pointee.spansInUse
    while c.alloc[spc.index] == fifth { _ = c.nextFree(spc) }
    #expect(c.alloc[spc.index] == span[0])
    while c.alloc[spc.index] == span[0] { _ = c.nextFree(spc) }
    #expect(c.alloc[spc.index] == span[2])
    while c.alloc[spc.index] == span[2] { _ = c.nextFree(spc) }
    #expect(c.alloc[spc.index] == span[1] && h.pointee.spansInUse == inUse)
    expectInvariants(h, c)
    // A span the lean cache empties goes back to the page heap at once, released.
    let atFree = atomicLoad64(&h.pointee.scavenger.pointee.releasedAtFree)
    for q in spans[3] { free(h, c, q) }
    #expect(h.pointee.spansInUse == inUse - 1)
    #expect(atomicLoad64(&h.pointee.scavenger.pointee.releasedAtFree) - atFree == UInt64(pageSize))
    expectInvariants(h, c)
    // Away from the limit the lists open again.
    setLimit(h, 0)
    free(h, c, spans[0][2])
    #expect(!c.header.pointee.lean && c.listLength(spc) == 1)
    expectInvariants(h, c)
    c.releaseAll()
    #expect(h.checkHeap().ok)
  }
}
