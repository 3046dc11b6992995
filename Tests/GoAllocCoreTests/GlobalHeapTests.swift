import Foundation
import Testing
@testable import GoAllocCore
import CGoAllocShim

/// Tests on the process-wide heap, one at a time (they compare global counters).
@Suite(.serialized) struct GlobalHeapTests {
  @Test func zeroedAllocationReadsZero() { _withExclusiveGlobalHeapForTesting {
    for size in [1, 17, 64, 1000, 5000, 40_000, 300_000] {
      for _ in 0..<3 {
        let p = goMalloc(size, mallocMode: false)!
        memset(p, 0xAB, size)
        goFree(p)
        let q = goMalloc(size, zero: true, mallocMode: false)!
        let b = q.assumingMemoryBound(to: UInt8.self)
        #expect((0..<size).allSatisfy { b[$0] == 0 }, "size \(size)")
        goFree(q)
      }
    }
  } }

  @Test func alignment() { _withExclusiveGlobalHeapForTesting {
    // Go mode: 18 B -> class 3 (24 B); malloc mode: 16-aligned for >= 16 B.
    let g = goMalloc(18, noscan: false, mallocMode: false)!
    #expect(usableSize(g) == 24)
    goFree(g)
    for size in 16...512 {
      let p = goMalloc(size, mallocMode: true)!
      #expect(UInt(bitPattern: p) % 16 == 0)
      goFree(p)
    }
    var align = 16
    while align <= 1 << 21 {
      for size in [1, 100, align, align + 1, 50_000] {
        let p = goAlignedAlloc(size, alignment: align, mallocMode: true)!
        #expect(UInt(bitPattern: p) % UInt(align) == 0, "align \(align) size \(size)")
        #expect(usableSize(p) >= size)
        memset(p, 1, size)
        goFree(p)
      }
      align <<= 1
    }
  } }

  @Test func tinyObjectsShareBlocksAndFreeExactly() { _withExclusiveGlobalHeapForTesting {
    let before = goReadMemStats()
    var ptrs: [UnsafeMutableRawPointer] = []
    for i in 0..<1000 { ptrs.append(goMalloc(1 + i % 15, noscan: true, mallocMode: false)!) }
    let blocks = Set(ptrs.map { UInt(bitPattern: $0) & ~15 })
    #expect(blocks.count < 1000)
    for (i, p) in ptrs.enumerated() { memset(p, 0x5A, 1 + i % 15) }
    for p in ptrs { goFree(p) }
    releaseThreadCache()
    let after = goReadMemStats()
    #expect(after.heapObjects == before.heapObjects)
    #expect(after.tinyAllocs - before.tinyAllocs == 1000)
  } }

  @Test func threadExitFlushesTheCache() { _withExclusiveGlobalHeapForTesting {
    let h = globalHeap()!
    let before = MemStats.read(h)
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { _ in
      var ps: [UnsafeMutableRawPointer] = []
      for i in 0..<5000 { ps.append(goMalloc(8 + (i % 300), mallocMode: true)!) }
      for p in ps { goFree(p) }
      _ = goMalloc(100, mallocMode: true)  // one object stays live
      return nil
    }, nil)
    #expect(rc == 0)
    pthread_join(tid, nil)
    let after = MemStats.read(h)
    #expect(after.numThreadCaches == before.numThreadCaches)
    #expect(after.mallocs - before.mallocs == 5001)
    #expect(after.heapObjects - before.heapObjects == 1)
    #expect(h.checkHeap().ok)
  } }

  /// Several real threads, sizes across every class edge and large, cross-thread frees through
  /// a shared exchange, contents verified before every free; ends with HeapObjects unchanged.
  @Test func multithreadedStress() { _withExclusiveGlobalHeapForTesting {
    let seed = UInt64(goalloc_nanotime())
    print("multithreadedStress seed \(seed) (GOALLOC_STRESS_SCALE=\(stressScale))")
    let h = globalHeap()!
    let before = MemStats.read(h)
    let sizes = edgeSizes()
    let threads = 4
    let exchange = Exchange()
    let failures = Counter()
    runConcurrently(threads: threads) { t in
      var rng = RepeatableRNG(seed: seed &+ UInt64(t))
      var live: [(UnsafeMutableRawPointer, Int)] = []
      for _ in 0..<(6000 * stressScale) {
        let r = rng.next() % 10
        if r < 5 || live.isEmpty {
          let n = sizes[Int(rng.next() % UInt64(sizes.count))]
          guard let p = rng.next() % 8 == 0 ? goMalloc(n, zero: true, mallocMode: true)
                                           : goMalloc(n, mallocMode: true) else { failures.add(); continue }
          fillPattern(p, min(n, 4096))
          live.append((p, n))
        } else if r < 8 {
          let (p, n) = live.swapRemoveRandom(&rng)
          if !checkPattern(p, min(n, 4096)) { failures.add() }
          goFree(p)
        } else {
          exchange.put(live.swapRemoveRandom(&rng))  // another thread frees it
          if let (p, n) = exchange.take() {
            if !checkPattern(p, min(n, 4096)) { failures.add() }
            goFree(p)
          }
        }
      }
      for (p, n) in live {
        if !checkPattern(p, min(n, 4096)) { failures.add() }
        goFree(p)
      }
      releaseThreadCache()
    }
    while let (p, n) = exchange.take() {
      if !checkPattern(p, min(n, 4096)) { failures.add() }
      goFree(p)
    }
    #expect(failures.value == 0)
    let after = MemStats.read(h)
    #expect(after.heapObjects == before.heapObjects)
    #expect(after.badFrees == before.badFrees)
    let check = h.checkHeap()
    #expect(check.ok, "\(check.failure)")
  } }
}

final class Exchange: @unchecked Sendable {
  private let lock = NSLock()
  private var items: [(UnsafeMutableRawPointer, Int)] = []
  func put(_ x: (UnsafeMutableRawPointer, Int)) { lock.lock(); items.append(x); lock.unlock() }
  func take() -> (UnsafeMutableRawPointer, Int)? {
    lock.lock(); defer { lock.unlock() }
    return items.popLast()
  }
}
final class Counter: @unchecked Sendable {
  private let lock = NSLock()
  private var n = 0
  func add() { lock.lock(); n += 1; lock.unlock() }
  var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
extension Array {
  mutating func swapRemoveRandom(_ rng: inout RepeatableRNG) -> Element {
    let i = Int(rng.next() % UInt64(count))
    swapAt(i, count - 1)
    return removeLast()
  }
}

@Suite struct ReallocGrowthTests {
  /// A buffer grown in small steps moves O(log n) times (small blocks grow by at least half,
  /// large ones get up to half a power of two of untouched headroom), and keeps its bytes.
  @Test func growingBufferMovesLogarithmically() { _withExclusiveGlobalHeapForTesting {
    var p = goMalloc(16, mallocMode: true)!
    var size = 16, moves = 0
    memset(p, 0x5A, size)
    while size < 1 << 20 {
      let next = size + 64
      let q = goRealloc(p, next, mallocMode: true)!
      if q != p { moves += 1 }
      #expect(q.load(fromByteOffset: size - 1, as: UInt8.self) == 0x5A)
      memset(q + size, 0x5A, next - size)
      p = q
      size = next
    }
    #expect(moves <= 24, "\(moves) moves")
    goFree(p)
  } }
}
