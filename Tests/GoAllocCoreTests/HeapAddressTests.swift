// Where the heap lives and what it maps: the random window and its flat span table, growth in
// steps proportional to the heap, metadata in proportion to the heap's range, huge alignments
// mapped at their own size, the heap's ranges.
#if canImport(Glibc)
import Glibc
#endif
import Testing
import CGoAllocShim
@testable import GoAllocCore

@Suite struct HeapAddressTests {
  @Test("random window bases are 64 MiB-aligned in [1 TiB, 64 TiB), leave room for the table and the window; offsets are whole pages under 64 MiB")
  func randomChoices() {
    var rng = RepeatableRNG(seed: 16)
    var bases = Set<UInt>(), offsets = Set<UInt>()
    for r in [UInt64(0), .max] + (0..<2000).map({ _ in rng.next() }) {
      let w = randomWindowBase(r), o = randomPageOffset(r)
      #expect(w % UInt(heapArenaBytes) == 0)
      #expect(w - UInt(spanTableBytes) >= randomWindowLow && w + UInt(spanWindowBytes) <= randomWindowHigh)
      #expect(o % UInt(pageSize) == 0 && o < UInt(heapArenaBytes))
      bases.insert(w)
      offsets.insert(o)
    }
    #expect(bases.count > 1990 && offsets.count > 1500)  // about 20 and 13 random bits
  }

  @Test("a heap's memory lies in the window, and the flat table and the arena index both find its spans")
  func windowAndLookups() throws {
    let h = try #require(MHeap.create())
    let s = try #require(h.allocSpan(1, spanclass: SpanClass(sizeclass: 5, noscan: true)))
    let space = addressSpaceSnapshot()
    let w = space.window, a = s.pointee.startAddr
    if !space.fixed {
      #expect(w >= randomWindowLow && w < randomWindowHigh && w % UInt(heapArenaBytes) == 0)
    } else {
      #expect(w == (goalloc_built_with_tsan() != 0 ? tsanHeapBase : UInt(GOALLOC_FIXED_HEAP_BASE)))
    }
    #expect(a >= w && a < w + UInt(spanWindowBytes))
    #expect(goalloc_span_lookup(a) == UnsafeMutableRawPointer(s))
    #expect(spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), a + UInt(pageSize) - 1) == s)
    // The table is mapped only as far as the heap has come, never its full 64 MiB.
    #expect(space.tableBytes > 0 && space.tableBytes < spanTableBytes)
    h.freeSpan(s)
    #expect(goalloc_span_lookup(a) == nil && h.spanOf(UnsafeRawPointer(bitPattern: a)!) == nil)
  }

  @Test("a fresh heap maps 4 MiB and well under 1 MiB of metadata; it grows by a quarter of its size, or by what a request needs")
  func growthIsProportional() throws {
    let h = try #require(MHeap.create())
    let small = try #require(h.allocSpan(1, spanclass: SpanClass(sizeclass: 5, noscan: true)))
    #expect(h.pointee.pages.totalPages * pageSize == 4 << 20)
    #expect(h.pointee.pages.sys < 512 << 10, "page allocator metadata: \(h.pointee.pages.sys) B")
    #expect(h.pointee.pages.levelsCount <= 2)  // summaries: one or two 8 KiB blocks
    let big = try #require(h.allocSpan((100 << 20) / pageSize, spanclass: .large(noscan: true)))
    #expect(h.pointee.pages.totalPages * pageSize == 104 << 20)  // the request, rounded to 4 MiB
    // Full: the next step is a quarter of 104 MiB, rounded up to 4 MiB.
    let fill = h.pointee.pages.freePages
    let rest = try #require(h.allocSpan(fill, spanclass: .large(noscan: true)))
    let more = try #require(h.allocSpan(1, spanclass: .large(noscan: true)))
    #expect(h.pointee.pages.totalPages * pageSize == (104 + 28) << 20)
    for s in [small, big, rest, more] { h.freeSpan(s) }
    expectInvariants(h, nil)
    expectRangesTileTheHeap(h)
  }

  @Test("a span of a 4 GiB alignment maps its own size: nothing of the alignment stays mapped, before or after its free")
  func hugeAlignmentKeepsNothing() throws {
    let h = try #require(MHeap.create())
    let first = try #require(h.allocSpan(1, spanclass: .large(noscan: true)))
    let before = h.pointee.pages.totalPages
    let s = try #require(h.allocSpan(5, spanclass: .large(noscan: true), alignPages: (1 << 32) / pageSize))
    #expect(s.pointee.startAddr % (1 << 32) == 0)
    #expect(h.pointee.pages.totalPages - before == 5)
    #expect(h.pointee.pages.sys < 1 << 20, "page allocator metadata: \(h.pointee.pages.sys) B")
    memset(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr)!, 0x5a, 5 * pageSize)
    h.freeSpan(s)
    #expect(h.pointee.pages.totalPages - before == 5)  // its pages are the heap's, free
    // A moderate alignment (1 MiB) grows the ordinary way: the head and tail are free heap pages.
    let m = try #require(h.allocSpan(1, spanclass: .large(noscan: true), alignPages: (1 << 20) / pageSize))
    #expect(m.pointee.startAddr % (1 << 20) == 0)
    h.freeSpan(m)
    h.freeSpan(first)
    expectInvariants(h, nil)
    expectRangesTileTheHeap(h)
  }

  @Test("summaries follow the heap's range: growing below and above it moves them, and the tree stays right")
  func summariesFollowTheHeap() throws {
    let base: UInt = 0x3000_0000_0000
    var pa = makePageAlloc(arenas: 1, at: base)
    #expect(pa.levelsCount == 1)
    let a = pa.alloc(100)
    #expect(a?.0 == base)
    let above = pa.grow(base + (64 << 30), pagesPerArena)   // 64 GiB above: four more 16 GiB blocks
    let below = pa.grow(base - (32 << 30), pagesPerArena)   // 32 GiB below: two more
    #expect(above && below && pa.levelsCount == 7)
    #expect(pa.checkInvariants())
    let low = pa.alloc(pagesPerArena)
    #expect(low?.0 == base - (32 << 30))  // the lowest address first
    pa.free(base, 100)
    let again = pa.alloc(pagesPerArena - 1)
    #expect(again?.0 == base)
    #expect(pa.checkInvariants())
    #expect(pa.sys < 2 << 20)  // the chunk tables' level 1, three 8 GiB blocks, seven summary blocks
  }

  @Test("ranges merge when adjacent and stay sorted; the heap map's arenas are their pieces per 64 MiB region")
  func rangesMerge() throws {
    let h = try #require(MHeap.create())
    let at = try #require(reserveHeap(3 * heapArenaBytes, align: pageSize, huge: false, owner: UInt(bitPattern: h)))
    lockAcquire(&h.pointee.lock)
    // Out of order: the middle, then the end, then the start.
    #expect(h.addMemory(at + UInt(heapArenaBytes), heapArenaBytes))
    #expect(h.addMemory(at + 2 * UInt(heapArenaBytes), heapArenaBytes))
    #expect(h.addMemory(at, heapArenaBytes))
    lockRelease(&h.pointee.lock)
    let r = try #require(h.pointee.ranges)
    #expect(r.pointee.base == at && r.pointee.end == at + 3 * UInt(heapArenaBytes) && r.pointee.next == nil)
    expectRangesTileTheHeap(h)
    var arenas = 0
    h.walkHeap { if $0.kind == .arena { arenas += 1 } }
    #expect(arenas == (at % UInt(heapArenaBytes) == 0 ? 3 : 4))
  }

  @Test("the initial environment is read from /proc/self/environ (for the first malloc, before environ)")
  func procEnviron() {
    var buf = [CChar](repeating: 0, count: 4096)
    #expect(goalloc_proc_environ_value("PATH", &buf, buf.count) == 1)
    let value = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    #expect(value == String(cString: getenv("PATH")!))
    #expect(goalloc_proc_environ_value("GOALLOC_NO_SUCH_VARIABLE", &buf, buf.count) == 0)
    #expect(goalloc_proc_environ_value("PAT", &buf, buf.count) == 0)  // a prefix is not a name
  }
}

/// The process's heap address space as it is now (other tests' heaps grow it meanwhile).
func addressSpaceSnapshot() -> HeapAddressSpace {
  lockAcquire(&heapAddressSpace.lock)
  defer { lockRelease(&heapAddressSpace.lock) }
  return heapAddressSpace
}

/// The heap's ranges are sorted, disjoint and never adjacent, and add up to HeapSys; the walk's
/// arena pieces cover them exactly.
func expectRangesTileTheHeap(_ h: UnsafeMutablePointer<MHeap>, sourceLocation: SourceLocation = #_sourceLocation) {
  var total = 0, last: UInt = 0
  var it = h.pointee.ranges
  while let r = it {
    #expect(r.pointee.base > last || last == 0, "ranges out of order or adjacent", sourceLocation: sourceLocation)
    #expect(r.pointee.end > r.pointee.base, sourceLocation: sourceLocation)
    total += Int(r.pointee.end - r.pointee.base)
    last = r.pointee.end
    it = r.pointee.next
  }
  #expect(total == h.pointee.pages.totalPages * pageSize, sourceLocation: sourceLocation)
  var walked = 0
  h.walkHeap { if $0.kind == .arena { walked += $0.npages * pageSize } }
  #expect(walked == total, sourceLocation: sourceLocation)
}
