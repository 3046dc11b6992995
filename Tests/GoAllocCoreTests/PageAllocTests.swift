import Testing
@testable import GoAllocCore

/// A private page allocator over fake address space (it never touches the pages themselves).
func makePageAlloc(arenas: Int = 1, at base: UInt = 0x5000_0000_0000) -> PageAlloc {
  var pa = PageAlloc()!
  let grown = pa.grow(base, arenas * pagesPerArena)
  #expect(grown)
  return pa
}

@Suite struct PageAllocTests {
  let base: UInt = 0x5000_0000_0000

  @Test func summaryPacking() {
    #expect(unpackSum(packSum(3, 7, 2)) == (3, 7, 2))
    #expect(unpackSum(packSum(maxPackedValue, maxPackedValue, maxPackedValue)) ==
            (maxPackedValue, maxPackedValue, maxPackedValue))
    #expect(unpackSum(0) == (0, 0, 0))
  }

  @Test func leafSummaryOfPatterns() {
    let c = UnsafeMutablePointer<UInt64>.allocate(capacity: 17)
    defer { c.deallocate() }
    for w in 0..<8 { c[w] = ~0 }
    #expect(unpackSum(PageAlloc.summarize(c)) == (512, 512, 512))
    for w in 0..<8 { c[w] = 0 }
    #expect(unpackSum(PageAlloc.summarize(c)) == (0, 0, 0))
    // free: pages 0-2, 100-199, 500-511
    for w in 0..<8 { c[w] = 0 }
    func setFree(_ lo: Int, _ hi: Int) { for i in lo..<hi { c[i >> 6] |= 1 << UInt64(i & 63) } }
    setFree(0, 3); setFree(100, 200); setFree(500, 512)
    #expect(unpackSum(PageAlloc.summarize(c)) == (3, 100, 12))
  }

  @Test func pageCacheCutsSmallRunsFromOneBlock() {
    var pa = makePageAlloc()
    let free0 = pa.freePages, scav0 = pa.scavPages
    // The first request takes the lowest 64-page block: everything comes from it, fresh pages
    // are scavenged (zero), and the counters move as for `alloc`.
    let a = pa.allocFromCache(1)!, b = pa.allocFromCache(3)!, c = pa.allocFromCache(16)!
    #expect(a.0 == base && b.0 == base + 8192 && c.0 == base + 4 * 8192)
    #expect(a.1 == 1 && b.1 == 3 && c.1 == 16)
    #expect(pa.freePages == free0 - 20 && pa.scavPages == scav0 - 20)
    #expect(pa.cachedPages == (44, 44) && pa.checkInvariants())
    // PageAlloc itself no longer offers the block: the next plain allocation comes after it.
    #expect(pa.alloc(1)!.0 == base + 64 * 8192)
    // A freed span's pages go back to the bitmaps; a flush returns the rest; all merge again.
    pa.free(b.0, 3)
    pa.flushCache()
    #expect(pa.cachedPages == (0, 0) && pa.checkInvariants())
    pa.free(a.0, 1)
    pa.free(c.0, 16)
    pa.free(base + 64 * 8192, 1)
    #expect(pa.freePages == free0 && pa.checkInvariants())
    #expect(pa.alloc(pagesPerArena)!.0 == base)
    // A used-up block is followed by the next one; a run that does not fit in what is left of
    // a block is refused (the caller then uses `alloc`).
    var pb = makePageAlloc()
    for _ in 0..<4 { _ = pb.allocFromCache(16)! }
    #expect(pb.cachedPages.free == 0)
    #expect(pb.allocFromCache(1)!.0 == base + 64 * 8192 && pb.cachedPages.free == 63)
    for _ in 0..<3 { _ = pb.allocFromCache(16)! }
    #expect(pb.cachedPages.free == 15 && pb.allocFromCache(16) == nil && pb.checkInvariants())
  }

  @Test func firstFitAndCoalescing() {
    var pa = makePageAlloc()
    let a = pa.alloc(1)!.0, b = pa.alloc(1)!.0, c = pa.alloc(1)!.0
    #expect(a == base && b == base + 8192 && c == base + 16384)
    #expect(pa.checkInvariants())
    pa.free(b, 1)
    // A 2-page run does not fit the 1-page hole: first fit lands after c.
    let d = pa.alloc(2)!.0
    #expect(d == base + 3 * 8192)
    // A 1-page request fills the hole.
    #expect(pa.alloc(1)!.0 == b)
    pa.free(a, 1); pa.free(b, 1); pa.free(c, 1); pa.free(d, 2)
    #expect(pa.checkInvariants())
    // Everything merged back into one run: the whole arena is one allocation.
    #expect(pa.freePages == pagesPerArena)
    #expect(pa.alloc(pagesPerArena)!.0 == base)
    #expect(pa.alloc(1) == nil)
    #expect(pa.checkInvariants())
  }

  @Test func runsCrossChunksAndArenas() {
    var pa = makePageAlloc(arenas: 2)
    // Occupy the first 500 pages so a 100-page run must straddle chunk 0 and chunk 1.
    _ = pa.alloc(500)
    let r = pa.alloc(100)!.0
    #expect(r == base + 500 * 8192)
    // A run larger than one arena crosses the arena boundary (contiguous arenas).
    let big = pa.alloc(pagesPerArena + 10)!.0
    #expect(big == base + 600 * 8192)
    #expect(pa.checkInvariants())
    pa.free(big, pagesPerArena + 10)
    pa.free(r, 100)
    pa.free(base, 500)
    #expect(pa.freePages == 2 * pagesPerArena)
    #expect(pa.checkInvariants())
  }

  @Test func alignedRuns() {
    var pa = makePageAlloc()
    _ = pa.alloc(3)
    let (a, _) = pa.alloc(4, alignPages: 128)!  // 1 MiB aligned
    #expect(a % (1 << 20) == 0)
    #expect(pa.checkInvariants())
  }

  @Test func scavengedPagesAreCounted() {
    var pa = makePageAlloc()
    let (a, scav) = pa.alloc(10)!
    #expect(scav == 10)  // fresh pages count as scavenged (known zero)
    pa.free(a, 10)
    let (b, scav2) = pa.alloc(10)!
    #expect(b == a && scav2 == 0)  // reused pages may hold data
    #expect(pa.scavPages == pagesPerArena - 10)
  }

  /// Random allocations and frees against a naive first-fit model over the same pages.
  @Test(arguments: [UInt64(1), 2, 3])
  func matchesNaiveFirstFit(seed: UInt64) {
    var rng = RepeatableRNG(seed: seed)
    let npages = 2 * pagesPerArena
    var pa = makePageAlloc(arenas: 2)
    var model = [Bool](repeating: true, count: npages)  // true = free
    var live: [(Int, Int)] = []
    func naiveFind(_ n: Int) -> Int? {
      var run = 0
      for i in 0..<npages {
        run = model[i] ? run + 1 : 0
        if run == n { return i - n + 1 }
      }
      return nil
    }
    for step in 0..<3000 {
      if live.isEmpty || rng.next() % 3 != 0 {
        let n = Int(rng.next() % 4 == 0 ? rng.next() % 700 + 1 : rng.next() % 16 + 1)
        let expect = naiveFind(n)
        let got = pa.alloc(n).map { Int(($0.0 - base) >> 13) }
        #expect(got == expect, "step \(step) n \(n)")
        if let g = got { for i in g..<(g + n) { model[i] = false }; live.append((g, n)) }
      } else {
        let k = Int(rng.next() % UInt64(live.count))
        let (g, n) = live.remove(at: k)
        pa.free(base + UInt(g) << 13, n)
        for i in g..<(g + n) { model[i] = true }
      }
      if step % 500 == 0 { #expect(pa.checkInvariants()) }
    }
    #expect(pa.checkInvariants())
    #expect(pa.freePages == model.filter { $0 }.count)
  }
}
