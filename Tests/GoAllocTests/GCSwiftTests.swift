// The GC mode through the Swift API (GoAlloc.GC), in this process: its threads that allocate
// through GoAlloc are registered and stopped by every collection here.
import Foundation
import Testing
import GoAlloc
import CGoAllocShim
@testable import GoAllocCore

/// Roots for these tests: globals are scanned (the test executable's data segment).
nonisolated(unsafe) var gcTestRoot: UnsafeMutableRawPointer? = nil

/// Not under ThreadSanitizer: it defers an asynchronous signal until the receiving thread enters
/// one of its interceptors, so a registered thread waiting in a plain futex system call
/// (libdispatch's idle workers, GoAlloc's own locks) never takes the stop signal and a
/// collection waits for it forever. The formulas below (GCFormulaTests) run there too.
@Suite(.serialized, .enabled(if: goalloc_built_with_tsan() == 0, "stop-the-world signals are deferred by ThreadSanitizer"))
struct GCSwiftTests {
  /// A scan block of n pointers to fresh collected objects of `size` bytes, held by gcTestRoot.
  @inline(never) func buildHeld(_ n: Int, _ size: Int) {
    let block = GC.allocate(n * 8)!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    for i in 0..<n { block[i] = GC.allocate(size) }
    gcTestRoot = UnsafeMutableRawPointer(block)
  }

  @Test func keptWhileHeldReclaimedWhenDropped() { _withExclusiveGlobalHeapForTesting {
    buildHeld(1000, 48)
    let f0 = MemStats.read().gcFrees
    #expect(GC.collect())
    let f1 = MemStats.read().gcFrees
    #expect(f1 - f0 < 50, "freed \(f1 - f0) while held")
    gcTestRoot = nil
    #expect(GC.collect())
    let m = MemStats.read()
    #expect(m.gcFrees - f1 >= 990, "freed \(m.gcFrees - f1) of 1001 once dropped")
    #expect(m.numGC >= 2 && m.numForcedGC >= 2 && m.pauseTotalNs > 0)
  } }

  @Test func scanMemoryIsZeroedNoscanIsNot() { _withExclusiveGlobalHeapForTesting {
    let p = GC.allocate(4000)!
    #expect(UnsafeRawBufferPointer(start: p, count: 4000).allSatisfy { $0 == 0 })
    GC.free(p)
    #expect(GC.base(of: p + 100) == p)
    #expect(GC.setPercent(200) == 100 || true)
    GC.setPercent(100)
  } }

  /// A wide structure (one scan block pointing at 4000 objects in ~100 spans) marked with a
  /// span queue of 4 entries: the overflow recovery finds every marked-unscanned span.
  @Test func markQueueOverflowIsRecovered() { _withExclusiveGlobalHeapForTesting {
    buildHeld(4000, 64)
    let block = gcTestRoot!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    for i in 0..<4000 { block[i]!.storeBytes(of: block[(i + 1) % 4000], as: UnsafeMutableRawPointer?.self) }
    _gcSetWorkLimitsForTesting(spans: 4, chunks: 2)
    let f0 = MemStats.read().gcFrees
    #expect(GC.collect())
    let mark = _gcLastMarkForTesting()
    _gcSetWorkLimitsForTesting(spans: 0, chunks: 0)
    let f1 = MemStats.read().gcFrees
    #expect(mark.overflows > 0, "no overflow with a 4-span queue")
    #expect(f1 - f0 < 50, "freed \(f1 - f0) reachable objects after an overflow")
    var intact = 0
    for i in 0..<4000 where block[i]!.load(as: UnsafeMutableRawPointer?.self) == block[(i + 1) % 4000] { intact += 1 }
    #expect(intact == 4000)
    gcTestRoot = nil
    GC.collect()
  } }

  /// Green Tea: objects found together (one block points at 20000 of them) are scanned a span
  /// at a time, not one queue entry each.
  @Test func spanQueueScansManyObjectsPerVisit() { _withExclusiveGlobalHeapForTesting {
    buildHeld(20000, 32)
    GC.collect()
    let mark = _gcLastMarkForTesting()
    #expect(mark.objectsScanned >= 20000)
    #expect(mark.spansScanned * 4 < mark.objectsScanned, "\(mark.spansScanned) span visits for \(mark.objectsScanned) objects")
    gcTestRoot = nil
    GC.collect()
  } }

  @Test func addedRootsAndMisuse() { _withExclusiveGlobalHeapForTesting {
    let area = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)  // system malloc: no root
    defer { area.deallocate() }
    #expect(GC.addRoots(area, area + 64))
    GC.collect()  // (garbage of earlier tests first)
    buildHeld(500, 100)
    area.storeBytes(of: gcTestRoot, as: UnsafeMutableRawPointer?.self)
    gcTestRoot = nil
    let f0 = MemStats.read().gcFrees
    GC.collect()
    #expect(MemStats.read().gcFrees - f0 < 100, "objects held by an added root were freed")
    #expect(GC.removeRoots(area, area + 64))
    #expect(!GC.addRoots(area + 8, area))
    area.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
    GC.collect()
  } }

  /// Collections while other threads allocate (GC lists, checked) and malloc/free in loops.
  @Test func collectWhileThreadsAllocate() { _withExclusiveGlobalHeapForTesting {
    final class Flag: @unchecked Sendable { let lock = NSLock(); var stop = false; var bad = 0
      var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stop } }
    let flag = Flag()
    let group = DispatchGroup()
    for t in 0..<3 {
      group.enter()
      let th = Thread {
        while !flag.isStopped {
          if t == 0 {
            for _ in 0..<200 { let p = GoAlloc.allocate(24 + t * 8, scan: true)!; GoAlloc.deallocate(p) }
          } else {
            var head: UnsafeMutableRawPointer? = nil
            for i in 0..<300 {
              let n = GC.allocate(32)!
              n.storeBytes(of: head, as: UnsafeMutableRawPointer?.self)
              n.storeBytes(of: i, toByteOffset: 8, as: Int.self)
              head = n
            }
            var expect = 299
            while let n = head {
              if n.load(fromByteOffset: 8, as: Int.self) != expect { flag.lock.lock(); flag.bad += 1; flag.lock.unlock() }
              expect -= 1
              head = n.load(as: UnsafeMutableRawPointer?.self)
            }
          }
        }
        group.leave()
      }
      th.start()
    }
    let n0 = MemStats.read().numGC
    for _ in 0..<30 { #expect(GC.collect()); usleep(1000) }
    flag.lock.lock(); flag.stop = true; flag.lock.unlock()
    group.wait()
    #expect(flag.bad == 0, "\(flag.bad) list nodes overwritten")
    #expect(MemStats.read().numGC >= n0 + 30)
  } }

  /// A span the thread had cached at the collection: swept in the stop, still cached; what it
  /// hands out next never overlaps an object that survived, and survivors keep their contents.
  @Test func cachedSpanAndFreshAllocations() { _withExclusiveGlobalHeapForTesting {
    let n = 40
    let block = GC.allocate(n * 8)!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    gcTestRoot = UnsafeMutableRawPointer(block)
    for i in 0..<n {
      let p = GC.allocate(208)!  // one class, so all in the thread's current span
      p.storeBytes(of: i, as: Int.self)
      if i % 2 == 0 { block[i] = p }  // odd ones are garbage
    }
    GC.collect()
    var kept = Set<UInt>()
    for i in stride(from: 0, to: n, by: 2) {
      #expect(block[i]!.load(as: Int.self) == i)
      kept.insert(UInt(bitPattern: block[i]!))
    }
    var overlaps = 0
    for _ in 0..<200 {
      let p = GC.allocate(208)!
      if kept.contains(UInt(bitPattern: p)) { overlaps += 1 }
      #expect(p.load(as: Int.self) == 0)  // zeroed, even where an odd one was
    }
    #expect(overlaps == 0)
    for i in stride(from: 0, to: n, by: 2) { #expect(block[i]!.load(as: Int.self) == i) }
    gcTestRoot = nil
  } }
}

/// The GC mode's pure parts (also under ThreadSanitizer).
@Suite struct GCFormulaTests {
  @Test func heapGoalFollowsGoFormula() {
    let mib: UInt64 = 1 << 20
    #expect(gcHeapGoal(marked: 0, stacks: 0, globals: 0, percent: 100, memLimit: 0, nonHeap: 0) == 4 * mib)
    #expect(gcHeapGoal(marked: 100 * mib, stacks: 1 * mib, globals: 1 * mib, percent: 100, memLimit: 0, nonHeap: 0) == 202 * mib)
    #expect(gcHeapGoal(marked: 100 * mib, stacks: 0, globals: 0, percent: 50, memLimit: 0, nonHeap: 0) == 150 * mib)
    #expect(gcHeapGoal(marked: 1 * mib, stacks: 0, globals: 0, percent: 200, memLimit: 0, nonHeap: 0) == 8 * mib)
    #expect(gcHeapGoal(marked: 10 * mib, stacks: 0, globals: 0, percent: -1, memLimit: 0, nonHeap: 0) == UInt64.max)
    // A 100 MiB limit with 20 MiB not collectable: 100 - 20 - 3 = 77 MiB.
    #expect(gcHeapGoal(marked: 50 * mib, stacks: 0, globals: 0, percent: 100, memLimit: 100 * mib, nonHeap: 20 * mib) == 77 * mib)
    // Never below marked + 1 MiB.
    #expect(gcHeapGoal(marked: 90 * mib, stacks: 0, globals: 0, percent: 100, memLimit: 100 * mib, nonHeap: 20 * mib) == 91 * mib)
  }

  @Test func collectedSpanClassEncoding() {
    let c = SpanClass(sizeclass: 5, noscan: true, collected: true)
    #expect(c.collected && c.noscan && c.sizeclass == 5 && !c.isLarge)
    #expect(c.shape == SpanClass(sizeclass: 5, noscan: true) && !c.shape.collected)
    #expect(SpanClass(sizeclass: 0, noscan: false, collected: true).isLarge)
    #expect(c.index < SpanClass.centralCount && SpanClass.tiny.index < SpanClass.collectedBit)
    #expect(!MCache.hasList(c))
  }

  /// GC.setMemoryLimit is the whole heap's limit: the malloc side (the scavenger's) follows it.
  @Test func memoryLimitReachesTheMallocSide() { _withExclusiveGlobalHeapForTesting {
    let h = globalHeap()!
    let before = GC.setMemoryLimit(256 << 20)
    #expect(atomicLoad64(&h.pointee.scavenger.pointee.memLimit) == 256 << 20)
    GC.setMemoryLimit(before)
    #expect(atomicLoad64(&h.pointee.scavenger.pointee.memLimit) == before)
  } }
}
