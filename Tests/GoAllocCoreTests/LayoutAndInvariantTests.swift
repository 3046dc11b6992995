import Testing
import CGoAllocShim
@testable import GoAllocCore

/// The layouts the fast paths and the Embedded build rely on, and the per-structure invariant
/// checks run after slow-path operations.
@Suite struct LayoutAndInvariantTests {
  @Test func spanClassEncoding() {
    #expect(SpanClass.count == numSizeClasses * 2 + 1)
    #expect(SpanClass.tiny.index == SpanClass.count - 1 && SpanClass.tiny.sizeclass == tinySizeClass)
    #expect(SpanClass.tiny.noscan && SpanClass.tiny.isTiny && !SpanClass.tiny.isSmall && !SpanClass.tiny.isLarge)
    for sc in 0..<numSizeClasses {
      for noscan in [false, true] {
        let spc = SpanClass(sizeclass: sc, noscan: noscan)
        #expect(spc.sizeclass == sc && spc.smallSizeclass == sc && spc.noscan == noscan)
        #expect(spc.isLarge == (sc == 0) && spc.isSmall == (sc != 0) && !spc.isTiny)
        #expect(SpanClass(index: spc.index) == spc)
      }
    }
    #expect(SpanClass.large(noscan: true).isLarge && SpanClass.large(noscan: true).noscan)
  }

  /// Pool.swift reaches its structs' fields through pointers at fixed offsets (no whole-struct
  /// accesses): each must be the field's own offset.
  @Test func poolFieldPointersMatchTheLayouts() {
    func off<S, T>(_ base: UnsafeMutablePointer<S>, _ f: UnsafeMutablePointer<T>) -> Int {
      UnsafeMutableRawPointer(f) - UnsafeMutableRawPointer(base)
    }
    let r = UnsafeMutablePointer<PoolRegistry>.allocate(capacity: 1)
    let p = UnsafeMutablePointer<PoolHeader>.allocate(capacity: 1)
    let l = UnsafeMutablePointer<PoolLocal>.allocate(capacity: 1)
    defer { r.deallocate(); p.deallocate(); l.deallocate() }
    typealias R = PoolRegistry
    typealias H = PoolHeader
    typealias L = PoolLocal
    let registry: [(Int, Int?)] = [
      (off(r, r.lock), MemoryLayout<R>.offset(of: \R.lock)), (off(r, r.rotateLock), MemoryLayout<R>.offset(of: \R.rotateLock)),
      (off(r, r.head), MemoryLayout<R>.offset(of: \R.head)), (off(r, r.free), MemoryLayout<R>.offset(of: \R.free)),
      (off(r, r.slotBits), MemoryLayout<R>.offset(of: \R.slotBits)), (off(r, r.highSlot), MemoryLayout<R>.offset(of: \R.highSlot)),
      (off(r, r.membarrier), MemoryLayout<R>.offset(of: \R.membarrier)), (off(r, r.fastPaths), MemoryLayout<R>.offset(of: \R.fastPaths)),
      (off(r, r.ticks), MemoryLayout<R>.offset(of: \R.ticks)), (off(r, r.persistent), MemoryLayout<R>.offset(of: \R.persistent)),
      (off(r, r.blocks), MemoryLayout<R>.offset(of: \R.blocks)),
    ]
    let header: [(Int, Int?)] = [
      (off(p, p.size), MemoryLayout<H>.offset(of: \H.size)), (off(p, p.ctor), MemoryLayout<H>.offset(of: \H.ctor)),
      (off(p, p.arg), MemoryLayout<H>.offset(of: \H.arg)), (off(p, p.next), MemoryLayout<H>.offset(of: \H.next)),
      (off(p, p.prev), MemoryLayout<H>.offset(of: \H.prev)), (off(p, p.victimTop), MemoryLayout<H>.offset(of: \H.victim.top)),
      (off(p, p.victimCount), MemoryLayout<H>.offset(of: \H.victim.count)), (off(p, p.victimLock), MemoryLayout<H>.offset(of: \H.victimLock)),
      (off(p, p.created), MemoryLayout<H>.offset(of: \H.created)), (off(p, p.dropped), MemoryLayout<H>.offset(of: \H.dropped)),
      (off(p, p.rotations), MemoryLayout<H>.offset(of: \H.rotations)), (off(p, p.magic), MemoryLayout<H>.offset(of: \H.magic)),
    ]
    let local: [(Int, Int?)] = [
      (off(l, l.privateObj), MemoryLayout<L>.offset(of: \L.privateObj)), (off(l, l.busy), MemoryLayout<L>.offset(of: \L.busy)),
      (off(l, l.revoke), MemoryLayout<L>.offset(of: \L.revoke)), (off(l, l.lock), MemoryLayout<L>.offset(of: \L.lock)),
      (off(l, l.top), MemoryLayout<L>.offset(of: \L.top)), (off(l, l.count), MemoryLayout<L>.offset(of: \L.count)),
      (off(l, l.spare), MemoryLayout<L>.offset(of: \L.spare)),
    ]
    for (i, (a, b)) in (registry + header + local).enumerated() { #expect(a == b, "field \(i): \(a) against \(String(describing: b))") }
    #expect(MemoryLayout<PoolLocal>.stride == 64 && MemoryLayout<PoolHeader>.stride <= PoolHeader.localsOffset)
  }

  @Test func fixedLayouts() {
    #expect(MCache.layoutIsConsistent)
    #expect(MemoryLayout<MCentral>.stride == 64)          // one central per cache line
    #expect(MemoryLayout<MSpan>.stride == 2 * 64)         // two cache lines (see MSpan)
    #expect(MemoryLayout<MSpan>.offset(of: \MSpan.startAddr) == 64)
    #expect(MemoryLayout<MSpan>.offset(of: \MSpan.freeState) == 120)
    // Line 0 holds what the owner writes on every malloc.
    for k: PartialKeyPath<MSpan> in [\MSpan.allocCache, \MSpan.freeindex32, \MSpan.allocCount32, \MSpan.localFreed] {
      #expect((0..<64).contains(MemoryLayout<MSpan>.offset(of: k)!))
    }
    // Line 1 holds everything the free fast path reads of a span.
    for k: PartialKeyPath<MSpan> in [\MSpan.handedEnd, \MSpan.divMulHi, \MSpan.groupOffset, \MSpan.home] {
      #expect((64..<128).contains(MemoryLayout<MSpan>.offset(of: k)!))
    }
    // The idle cache covers every word the malloc fast path reads of a cache.
    #expect(Int(GOALLOC_IDLE_CACHE_SPANS) == SpanClass.count)  // (the pool's word after them reads 0)
    #expect(Int(GOALLOC_IDLE_CACHE_SPANS) * 8 <= MCache.poolOffsetOffset)
    #expect(Int(GOALLOC_IDLE_CACHE_WORDS) * 8 >= MCache.countersOffset + SpanClass.count * ClassGroup.words * 8)
    #expect(Chunk.words == 2 * Chunk.bitmapWords + 1 && Chunk.summary == Chunk.scav + Chunk.bitmapWords)
    let b = HeapBlock()
    let offsets = [b.emptySpan, b.bitsAllocs, b.caches, b.scavenger, b.instrumentation, b.largeSlots,
                   b.arenaL1, b.centrals, b.scavengerRuns, b.flushed, b.globalFrees, b.bytes]
    #expect(offsets.allSatisfy { $0 % 64 == 0 })
    #expect(offsets == offsets.sorted() && b.emptySpan >= MemoryLayout<MHeap>.stride)
    #expect(b.centrals + SpanClass.count * 64 <= b.scavengerRuns)
    #expect(b.arenaL1 + arenaL1Entries * 8 <= b.centrals)
  }

  @Test func invariantsHoldAfterSlowPathOperations() {
    let h = MHeap.create()!
    let owner = MCache.create(h)!, other = MCache.create(h)!
    func expectAll(_ what: String) {
      let heap = h.checkHeap(), a = owner.checkInvariants(), b = other.checkInvariants()
      #expect(heap.ok, "\(what): heap: \(heap.failure)")
      #expect(a.ok, "\(what): owner: \(a.failure)")
      #expect(b.ok, "\(what): other: \(b.failure)")
    }
    func malloc(_ size: Int, noscan: Bool, mallocMode: Bool) -> UInt {
      var sc = 0
      return mallocWith(owner, size, noscan: noscan, zero: false, mallocMode: mallocMode, alignment: 0, sizeclass: &sc)
    }
    expectAll("fresh")
    var ptrs: [UInt] = []
    for i in 0..<3000 {  // refills of several classes, tiny blocks, a large object
      let p = malloc(8 + (i % 40) * 24, noscan: i % 3 == 0, mallocMode: i % 2 == 0)
      #expect(p != 0)
      ptrs.append(p)
    }
    let tiny = owner.mallocTiny(5)
    let large = malloc(100_000, noscan: true, mallocMode: true)
    expectAll("after refills")
    for (i, p) in ptrs.enumerated() where i % 2 == 0 {  // lists fill and flush; remote frees
      freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), (i % 4 == 0 ? owner : other).raw, p, op: "free")
    }
    expectAll("after frees")
    other.flushLists()
    owner.flushLists()
    expectAll("after flushes")
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), owner.raw, tiny, op: "free")
    freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), owner.raw, large, op: "free")
    for (i, p) in ptrs.enumerated() where i % 2 == 1 {
      freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), other.raw, p, op: "free")
    }
    expectAll("after freeing everything")
    other.releaseAll()
    owner.releaseAll()
    h.reclaim()
    expectAll("after release and reclaim")
    var spans = 0
    lockAcquire(&h.pointee.lock)
    h.forEachSpanLocked { _ in spans += 1 }
    lockRelease(&h.pointee.lock)
    #expect(spans == h.pointee.spansInUse + h.pointee.largeCached)
  }
}
