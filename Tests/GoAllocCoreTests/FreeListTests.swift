import Testing
import Glibc
import CGoAllocShim
@testable import GoAllocCore

/// Clear-box tests of the per-cache free lists on a private heap (bad frees in warn mode there,
/// counted in the heap's badFrees).
@Suite struct FreeListTests {
  let h: UnsafeMutablePointer<MHeap>
  let spc = SpanClass(sizeclass: 6, noscan: true)  // 64 B, 128 per span

  init() {
    h = MHeap.create()!
    h.debugFlags = GOALLOC_DEBUG_PARSED | GOALLOC_DEBUG_BADFREE_WARN
  }

  func malloc(_ c: MCache) -> UInt { mallocSmall(c, spc, 64, zero: false) }
  /// A cache whose list is empty after its first span's colour slots were handed out (kept).
  func primedCache() -> MCache {
    let c = MCache.create(h)!
    _ = malloc(c)
    while c.listLength(spc) > 0 { _ = malloc(c) }
    return c
  }
  /// A free, then the invariant checks of the heap and of the freeing cache.
  func free(_ c: MCache?, _ p: UInt, sourceLocation: SourceLocation = #_sourceLocation) {
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c?.raw, p, op: "free")
    expectInvariants(h, c, sourceLocation: sourceLocation)
  }
  func word1(_ p: UInt) -> UInt { UnsafePointer<UInt>(bitPattern: p)![1] }
  var badFrees: UInt64 { atomicLoad64(&h.pointee.badFrees) }

  @Test func aFreedObjectIsTheNextOneHandedOut() {
    let c = primedCache()
    let limit = MCache.listLimit(spc)
    let p = malloc(c)
    #expect(word1(p) == 0)
    free(c, p)
    #expect(c.list(spc)[0] == p && word1(p) == c.freeKey && c.listLength(spc) == 1 && c.listedObjects == 1)
    #expect(malloc(c) == p)
    #expect(word1(p) == 0 && c.list(spc)[0] == 0 && c.listedObjects == 0)
    _ = limit
    // Frees of several objects come back most recent first.
    let a = malloc(c), b = malloc(c)
    free(c, a)
    free(c, b)
    #expect(malloc(c) == b && malloc(c) == a)
    #expect(badFrees == 0 && h.checkHeap().ok)
  }

  @Test func aFullListFlushesHalfIntoTheBitmaps() {
    let c = primedCache()
    let limit = MCache.listLimit(spc)
    var ps: [UInt] = []
    for _ in 0...limit { ps.append(malloc(c)) }
    for p in ps { free(c, p) }
    // limit pushes filled it; the next one flushed limit / 2 (the most recent) and was listed.
    #expect(c.listedObjects == limit / 2 + 1 && word1(ps[limit]) == c.freeKey)
    // Listed or flushed into the bitmaps, every one carries the free mark.
    #expect(ps.allSatisfy { word1($0) == c.freeKey })
    // The listed ones come back first; nothing is handed out twice.
    var again = Set<UInt>()
    for _ in 0...limit / 2 { again.insert(malloc(c)) }
    #expect(again.count == limit / 2 + 1 && again.isSubset(of: Set(ps)))
    for _ in 0..<2 * limit { #expect(again.insert(malloc(c)).inserted) }
    #expect(badFrees == 0 && h.checkHeap().ok)
  }

  @Test func doubleFreesAreCaughtInEveryState() {
    let c = primedCache(), other = primedCache()
    let p = malloc(c), q = malloc(c), r = malloc(c)
    free(c, p)
    free(c, p)        // listed here
    #expect(badFrees == 1)
    free(other, p)    // listed in another cache
    #expect(badFrees == 2)
    free(nil, p)      // by a thread without a cache
    #expect(badFrees == 3)
    free(other, q)
    other.flushLists()
    #expect(word1(q) == c.freeKey)
    free(c, q)        // free in the bitmaps
    free(other, q)
    free(nil, q)
    #expect(badFrees == 6)
    // A slot never handed out (above the span's high-water mark) is a wild pointer.
    let span = c.alloc[spc.index]
    let wild = span.base + UInt(100 * 64)
    free(c, wild)
    free(nil, wild)
    #expect(badFrees == 8)
    // Nothing was listed twice, and r (live) was never touched.
    #expect(c.listedObjects == 1 && other.listedObjects == 0)
    var seen = Set<UInt>()
    for _ in 0..<300 { #expect(seen.insert(malloc(c)).inserted) }
    #expect(!seen.contains(r))
    #expect(h.checkHeap().ok)
  }

  /// Objects of a class under a cache line (32 B, 256 per span), for the free-goes-home tests.
  let small = SpanClass(sizeclass: 4, noscan: true)
  func mallocSmallClass(_ c: MCache) -> UInt { mallocSmall(c, small, 32, zero: false) }
  func primedSmallCache() -> MCache {
    let c = MCache.create(h)!
    _ = mallocSmallClass(c)
    while c.listLength(small) > 0 { _ = mallocSmallClass(c) }
    return c
  }

  @Test func anotherThreadsSmallObjectsGoBackToTheSpan() {
    let owner = primedSmallCache(), other = primedSmallCache()
    let p = mallocSmallClass(owner)
    let span = owner.alloc[small.index]
    free(other, p)
    // Not onto the freeing thread's list: a remote free in the span's bitmaps, marked free.
    #expect(other.listedObjects == 0 && span.pendingFrees == 1 && word1(p) == owner.freeKey)
    #expect(mallocSmallClass(other) != p)
    free(other, p)  // again: a double free, found by the mark
    #expect(badFrees == 1)
    // The owner's own frees still go onto its list.
    let q = mallocSmallClass(owner)
    free(owner, q)
    #expect(owner.list(small)[0] == q && owner.listedObjects == 1)
  }

  @Test func anotherThreadsObjectsOfACacheLineOrMoreAreReusedByIt() {
    #expect(classSize(spc.smallSizeclass) >= migrateMinSize && classSize(small.smallSizeclass) < migrateMinSize)
    let owner = primedCache(), other = primedCache()
    let p = malloc(owner)
    let span = owner.alloc[spc.index]
    free(other, p)
    #expect(other.list(spc)[0] == p && span.pendingFrees == 0)
    #expect(malloc(other) == p)  // reused by the freeing thread, no atomics on the way
    free(other, p)
    other.flushLists()           // a flush sends it back to its span as a remote free
    #expect(span.pendingFrees == 1 && other.listedObjects == 0)
    #expect(badFrees == 0)
  }

  @Test func aSpanStaysAtHomeWhileItFloats() {
    let c = primedSmallCache(), other = primedSmallCache()
    let first = c.alloc[small.index]
    var ps: [UInt] = []
    while c.alloc[small.index] == first || ps.isEmpty { ps.append(mallocSmallClass(c)) }
    // `first` was exhausted and floats (owner 0) but is still at home in c: c's frees of its
    // objects go onto c's list, another thread's go to its bitmaps and claim it for the mcentral.
    let mine = ps.filter { $0 & ~8191 == first.base }
    #expect(atomicLoadRelaxedUInt(&first.pointee.owner) == 0 && c.isHome(first) && mine.count > 2)
    free(c, mine[0])
    #expect(c.list(small)[0] == mine[0] && first.pendingFrees == 0)
    free(other, mine[1])
    #expect(first.pendingFrees == 1 && other.listedObjects == 0)
    #expect(atomicLoad64(&first.pointee.freeState) & fsFlags == fsPartial)
    #expect(badFrees == 0)
  }

  @Test func aFlushSendsAnotherThreadsSlotsHomeMarkedAndCounted() {
    let owner = primedCache(), other = primedCache()
    let span = owner.alloc[spc.index]
    var ps: [UInt] = []
    for _ in 0..<8 { ps.append(malloc(owner)) }
    #expect(Set(ps.map { $0 & ~8191 }).count == 1)
    for p in ps { free(other, p) }  // 64 B: onto other's list
    other.flushLists()
    // Eight slots side by side (one or two bitmap words): pending counts words, all eight are
    // recorded. (Whether a run takes one atomic is not observable here; callgrind shows it.)
    #expect(span.pendingFrees >= 1 && span.pendingFrees <= 2 && span.remoteFreeCount == 8)
    for p in ps { #expect(word1(p) == owner.freeKey) }
    free(other, ps[3])              // a double free after the flush: caught by the mark
    #expect(badFrees == 1)
  }

  @Test func slotsHandedOutFromTheBitmapsLoseTheMark() {
    let c = MCache.create(h)!
    var ps: [UInt] = []
    for _ in 0..<128 { ps.append(malloc(c)) }  // the whole first span (its colour slots too)
    #expect(Set(ps.map { $0 & ~8191 }).count == 1)
    for p in ps { free(c, p) }
    c.flushLists()                              // every slot free in the bitmaps, marked
    for p in ps { #expect(word1(p) == c.freeKey) }
    var again: [UInt] = []
    for _ in 0..<128 { again.append(malloc(c)) }
    #expect(Set(again) == Set(ps))
    for p in again { #expect(word1(p) == 0) }   // handed out: a free of it is valid again
    for p in again { free(c, p) }
    #expect(badFrees == 0 && h.checkHeap().ok)
  }

  @Test func aFreshSpansFirstObjectIsColouredByItsClass() {
    let c = MCache.create(h)!
    var lines = Set<UInt>()
    for sc in [2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 28, 32] {
      let spc = SpanClass(sizeclass: sc, noscan: true)
      let p = mallocSmall(c, spc, classSize(sc), zero: false)
      let span = c.alloc[spc.index]
      let k = Int(p - span.base) / classSize(sc)
      // Slots 0..<k are listed (the next mallocs of the class), p itself is handed out.
      #expect(c.listLength(spc) == k && word1(p) == 0 && p - span.base < 4096)
      lines.insert((p & 4095) >> 6)
      for i in (0..<k).reversed() { #expect(mallocSmall(c, spc, classSize(sc), zero: false) == span.base + UInt(i * classSize(sc))) }
    }
    #expect(lines.count >= 10)  // the first objects of 14 classes fall on many L1 sets
    #expect(badFrees == 0 && h.checkHeap().ok)
  }

  @Test func releasingACacheFlushesItsListsAndFreesTheSpans() {
    let c = MCache.create(h)!
    let before = h.pointee.spansInUse
    var ps: [UInt] = []
    for _ in 0..<300 { ps.append(malloc(c)) }
    for p in ps { free(c, p) }
    #expect(c.listedObjects > 0)
    c.releaseAll()
    #expect(c.listedObjects == 0)
    _ = h.reclaim()
    #expect(h.pointee.spansInUse == before)
    #expect(badFrees == 0 && h.checkHeap().ok)
  }
}

/// The hardening of the lists: encoded links, the length outside the objects.
@Suite struct FreeListHardeningTests {
  @Test func linkMultipliersAreInversesAndDifferPerClass() {
    let h = MHeap.create()!
    let c = MCache.create(h)!, d = MCache.create(h)!
    var seen = Set<UInt>()
    for i in MCache.listClasses {
      let l = c.list(SpanClass(index: i))
      #expect(l[ClassGroup.encode] & 1 == 1 && l[ClassGroup.encode] &* l[ClassGroup.decode] == 1)
      #expect(seen.insert(l[ClassGroup.encode]).inserted)
      #expect(d.list(SpanClass(index: i))[ClassGroup.encode] != l[ClassGroup.encode])
    }
    for x: UInt in [1, 3, 0xdead_beef, UInt.max] { #expect(x &* inverseMod64(x) == 1) }
  }

  @Test func aStrayWriteToWordOneChangesNeitherLengthNorOtherMarks() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)
    var ps: [UInt] = []
    for _ in 0..<10 { ps.append(mallocSmall(c, spc, 64, zero: false)) }
    for p in ps { freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, p, op: "free") }
    let listed = c.listLength(spc)
    UnsafeMutablePointer<UInt>(bitPattern: ps[9])![1] = 0        // the head's word 1
    UnsafeMutablePointer<UInt>(bitPattern: ps[5])![1] = .max     // one deeper in the list
    #expect(c.listLength(spc) == listed)
    // Later frees are still marked and checked.
    let q = mallocSmall(c, spc, 64, zero: false)
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, q, op: "free")
    #expect(UnsafePointer<UInt>(bitPattern: q)![1] == c.freeKey)
    // The flush walks exactly the recorded length and leaves every slot free in the bitmaps.
    c.flushLists()
    #expect(c.listLength(spc) == 0 && c.list(spc)[ClassGroup.head] == 0)
    for p in ps { #expect(UnsafePointer<UInt>(bitPattern: p)![1] == c.freeKey) }
    #expect(h.checkHeap().ok && c.checkInvariants().ok)
  }

  @Test func linksAreStoredEncoded() {
    let h = MHeap.create()!
    let c = MCache.create(h)!
    let spc = SpanClass(sizeclass: 6, noscan: true)
    let a = mallocSmall(c, spc, 64, zero: false), b = mallocSmall(c, spc, 64, zero: false)
    let l = c.list(spc)
    let before = l[ClassGroup.head]
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, a, op: "free")
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), c.raw, b, op: "free")
    let word0 = UnsafePointer<UInt>(bitPattern: b)![0]
    #expect(word0 != a && word0 &* l[ClassGroup.decode] == a)
    #expect(UnsafePointer<UInt>(bitPattern: a)![0] &* l[ClassGroup.decode] == before)
  }
}
