// The GC mode through the Swift API (GoAlloc.GC), in this process: its threads that allocate
// through GoAlloc are registered and stopped by every collection here.
import Foundation
import Testing
import GoAlloc
import CGoAllocShim
import GoAllocTools
@testable import GoAllocCore

/// Roots for these tests: globals are scanned (the test executable's data segment).
nonisolated(unsafe) var gcTestRoot: UnsafeMutableRawPointer? = nil

/// GCFrees once the sweep of the last cycle has finished: a cycle the allocations of a test
/// triggered leaves its garbage to the lazy sweep, which the next collection's sweep
/// termination would count with that collection's own frees.
func settledFrees() -> UInt64 {
  while _gcSweepOneForTesting() >= 0 {}
  return MemStats.read().gcFrees
}

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
    let f0 = settledFrees()
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
  /// span queue of 4 entries: the overflow recovery finds every marked-unscanned span. With the
  /// object queue (an object stack of 4), the objects hold no links (a chain would let a stale
  /// root reach them all one at a time, with no overflow).
  /// With several mark workers the local queues are as small as the limits too, but how much
  /// each holds depends on scheduling: only one worker is sure to overflow.
  @Test(arguments: [false, true], [1, 4]) func markQueueOverflowIsRecovered(objectQueue: Bool, procs: Int) { _withExclusiveGlobalHeapForTesting {
    let oldQueue = _gcSetObjectQueueForTesting(objectQueue)
    let oldProcs = _gcSetProcsForTesting(procs)
    defer { _ = _gcSetObjectQueueForTesting(oldQueue); _ = _gcSetProcsForTesting(oldProcs) }
    GC.collect()  // (garbage of earlier tests, which a stale root may have kept, first)
    buildHeld(4000, 64)
    let block = gcTestRoot!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    for i in 0..<4000 {
      block[i]!.storeBytes(of: objectQueue ? nil : block[(i + 1) % 4000], as: UnsafeMutableRawPointer?.self)
      block[i]!.storeBytes(of: i, toByteOffset: 8, as: Int.self)
    }
    _gcSetWorkLimitsForTesting(spans: 4, chunks: 2)
    let f0 = settledFrees()
    #expect(GC.collect())
    let mark = _gcLastMarkForTesting()
    _gcSetWorkLimitsForTesting(spans: 0, chunks: 0)
    let f1 = MemStats.read().gcFrees
    if procs == 1 { #expect(mark.overflows > 0, "no overflow with a 4-entry queue: \(mark)") }
    #expect(_gcLastMarkWorkersForTesting() == procs)
    // Every held object is still allocated (a count of frees would also count earlier cases'
    // garbage that a stale root kept until now).
    var lost = 0
    for i in 0..<4000 where GC.base(of: block[i]!) != block[i]! { lost += 1 }
    #expect(lost == 0 && GC.base(of: UnsafeMutableRawPointer(block)) == UnsafeMutableRawPointer(block),
            "freed \(lost) reachable objects after an overflow (\(f1 - f0) frees in all)")
    var intact = 0
    for i in 0..<4000 where block[i]!.load(fromByteOffset: 8, as: Int.self) == i
      && block[i]!.load(as: UnsafeMutableRawPointer?.self) == (objectQueue ? nil : block[(i + 1) % 4000]) { intact += 1 }
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
    let f0 = settledFrees()
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

/// Lazy sweep (MGCSweep): what a collection leaves unswept, who sweeps it, and the modes.
@Suite(.serialized, .enabled(if: goalloc_built_with_tsan() == 0, "stop-the-world signals are deferred by ThreadSanitizer"))
struct GCLazySweepTests {
  /// n collected objects of `size` bytes, dropped at once (garbage for the next collection).
  @inline(never) func makeGarbage(_ n: Int, _ size: Int) {
    for i in 0..<n { GC.allocate(size)!.storeBytes(of: i, as: Int.self) }
  }

  /// Runs body with the sweep mode set (0 lazy, 1 eager, 2 ondemand), then restores the mode and
  /// collects what body dropped (the other GC tests count the frees of their own collections).
  func inMode(_ mode: UInt32, _ body: () -> Void) {
    _withExclusiveGlobalHeapForTesting {
      GC.collect()
      let old = _gcSetSweepModeForTesting(mode)
      body()
      while _gcSweepOneForTesting() >= 0 {}
      _ = _gcSetSweepModeForTesting(old)
      gcTestRoot = nil
      GC.collect()
      while _gcSweepOneForTesting() >= 0 {}
    }
  }

  @Test func collectionLeavesGarbageUnsweptUntilReached() { inMode(2) {
    makeGarbage(12000, 80)  // (about 30 collected spans of 32 KiB)
    let f0 = MemStats.read().gcFrees
    #expect(GC.collect())
    let s = _gcSweepStateForTesting()
    let m = MemStats.read()
    #expect(s.unswept > 10, "only \(s.unswept) spans left unswept")
    #expect(m.gcUnsweptSpans == s.unswept)
    #expect(m.gcFrees - f0 < 4000, "\(m.gcFrees - f0) freed at once")
    #expect(globalHeap()!.checkHeap().ok)
    var swept = 0
    while _gcSweepOneForTesting() >= 0 { swept += 1 }
    #expect(UInt64(swept) == s.unswept)
    #expect(_gcSweepStateForTesting().unswept == 0)
    #expect(MemStats.read().gcFrees - f0 >= 11990, "\(MemStats.read().gcFrees - f0) freed once swept")
    #expect(globalHeap()!.checkHeap().ok)
  } }

  @Test func allocationPaysProportionalSweep() { inMode(2) {
    makeGarbage(40000, 96)
    #expect(GC.collect())
    let before = _gcSweepStateForTesting()
    #expect(before.unswept > 50 && before.pagesSwept == 0)
    // Another size class: its refills sweep other classes' spans only as the pace asks.
    let n0 = MemStats.read().numGC
    makeGarbage(1000, 1024)
    let after = _gcSweepStateForTesting()
    if MemStats.read().numGC == n0 {
      #expect(after.pagesSwept > 0 && after.unswept < before.unswept, "\(before) -> \(after)")
    }
    #expect(globalHeap()!.checkHeap().ok)
  } }

  @Test func refillSweepsItsOwnClassFirst() { inMode(2) {
    // Survivors in every span, so the lazy sweep hands out the dead slots between them.
    let block = GC.allocate(4000 * 8)!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    gcTestRoot = UnsafeMutableRawPointer(block)
    for i in 0..<4000 {
      let p = GC.allocate(112)!
      p.storeBytes(of: i, as: Int.self)
      block[i] = i % 4 == 0 ? p : nil
    }
    #expect(GC.collect())
    let heapBefore = MemStats.read().heapInuse
    var kept = Set<UInt>()
    for i in stride(from: 0, to: 4000, by: 4) { kept.insert(UInt(bitPattern: block[i]!)) }
    var overlaps = 0, dirty = 0
    for _ in 0..<2500 {
      let p = GC.allocate(112)!
      if kept.contains(UInt(bitPattern: p)) { overlaps += 1 }
      if p.load(as: Int.self) != 0 { dirty += 1 }
    }
    #expect(overlaps == 0 && dirty == 0)
    #expect(MemStats.read().heapInuse <= heapBefore, "the heap grew while dead slots waited")
    for i in stride(from: 0, to: 4000, by: 4) { #expect(block[i]!.load(as: Int.self) == i) }
    gcTestRoot = nil
  } }

  /// The heap map tells collected spans apart: held by a GC cache, waiting for the sweep,
  /// swept; scan or noscan by their class; outlined in the SVG (dashed while unswept).
  @Test func heapMapShowsCollectedSpans() { inMode(2) {
    makeGarbage(3000, 80)
    gcTestRoot = GC.allocate(5000, scan: false)
    #expect(GC.collect())
    let map = HeapMap.current()
    let states = Set(map.spans.map(\.state.rawValue))
    #expect(states.contains("gcunswept") && states.contains("gccached"), "\(states)")
    #expect(map.spans.contains { $0.state.isCollected && $0.spanClass & 1 == 1 }, "no noscan GC span")
    #expect((try? HeapMap(parsing: map.text)) == map)
    let svg = HeapMapSVG.render(map)
    #expect(svg.contains("data-gc=\"scan\"") && svg.contains("data-gc=\"noscan\"") && svg.contains("stroke-dasharray"))
    while _gcSweepOneForTesting() >= 0 {}
    let after = Set(HeapMap.current().spans.map(\.state.rawValue))
    #expect(!after.contains("gcunswept") && after.contains("gccached"), "\(after)")  // (the dead spans went back)
  } }

  @Test func eagerModeSweepsInThePause() { inMode(1) {
    makeGarbage(3000, 80)
    let f0 = MemStats.read().gcFrees
    #expect(GC.collect())
    #expect(_gcSweepStateForTesting().unswept == 0)
    #expect(MemStats.read().gcFrees - f0 >= 2990)
  } }

  @Test func collectFinishesTheSweep() { inMode(0) {
    makeGarbage(3000, 80)
    let f0 = MemStats.read().gcFrees
    #expect(GC.collect())
    #expect(_gcSweepStateForTesting().unswept == 0)
    #expect(MemStats.read().gcFrees - f0 >= 2990)
    #expect(globalHeap()!.checkHeap().ok)
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

  /// Go's trigger clamp: 0.7..0.95 of the way from marked to goal, at least goal - 4 MiB on large
  /// heaps; with the world stopped the top is 58/64 of the way.
  @Test func triggerFollowsGoClamp() {
    let mib: UInt64 = 1 << 20
    // Stopped-world mark (no runway): the stopped world's upper bound, 58/64 of the way.
    #expect(gcTrigger(marked: 32 * mib, goal: 64 * mib, runway: 0) == 32 * mib + 32 * mib / 64 * 58)
    // A concurrent mark with a short runway: Go's upper bound, 61/64.
    #expect(gcTrigger(marked: 32 * mib, goal: 64 * mib, runway: mib) == 32 * mib + 32 * mib / 64 * 61)
    // A large heap: goal - 4 MiB when that is above the upper bound (both kinds of mark).
    #expect(gcTrigger(marked: 1024 * mib, goal: 2048 * mib, runway: 0) == 2044 * mib)
    #expect(gcTrigger(marked: 1024 * mib, goal: 2048 * mib, runway: mib) == 2044 * mib)
    // Where 58/64 and goal - 4 MiB meet (a way of 128 MiB / 3): just under, 58/64 decides.
    #expect(gcTrigger(marked: 0, goal: 40 * mib, runway: 0) == 40 * mib / 64 * 58)
    // A runway inside the bounds is taken as it is; a long one stops at 45/64.
    #expect(gcTrigger(marked: 32 * mib, goal: 64 * mib, runway: 4 * mib) == 60 * mib)
    #expect(gcTrigger(marked: 32 * mib, goal: 64 * mib, runway: 30 * mib) == 32 * mib + 32 * mib / 64 * 45)
    #expect(gcTrigger(marked: 32 * mib, goal: 64 * mib, runway: .max) == 32 * mib + 32 * mib / 64 * 45)
    // Never above the goal; a goal at or below marked is its own trigger; GOGC off stays off.
    #expect(gcTrigger(marked: 4 * mib, goal: 4 * mib, runway: 0) == 4 * mib)
    #expect(gcTrigger(marked: 0, goal: 4 * mib, runway: 0) <= 4 * mib)
    #expect(gcTrigger(marked: 10 * mib, goal: .max, runway: 0) > UInt64.max / 2)
  }

  /// Mark assists (MGCAssist): Go's assistWorkPerByte, and a debt paid from the workers' credit.
  @Test func assistDebtAndCredit() {
    let mib: UInt64 = 1 << 20
    // 8 MiB of mark work left, 16 MiB of runway: half a byte of marking per byte allocated.
    #expect(gcAssistWorkPerByte(expected: 10 * mib, hard: 10 * mib, done: 2 * mib, goal: 40 * mib, live: 24 * mib) == 0.5)
    // Past the expected work, the heap as the mark began is the most left (a heap that grows:
    // 30 - 12 = 18 MiB over 16 MiB of runway); past that too, a sixteenth of it is still owed;
    // the runway is never below 64 KiB.
    #expect(gcAssistWorkPerByte(expected: 10 * mib, hard: 30 * mib, done: 12 * mib, goal: 40 * mib, live: 24 * mib) == 1.125)
    #expect(gcAssistWorkPerByte(expected: 16 * mib, hard: 16 * mib, done: 20 * mib, goal: 40 * mib, live: 39 * mib) == 1.0)
    #expect(gcAssistWorkPerByte(expected: 1 * mib, hard: 0, done: 0, goal: 10 * mib, live: 12 * mib) == 16.0)
    // A charge is paid from the credit first; what the credit cannot pay stays owed.
    #expect(gcAssistSettle(debt: 0, charge: 1000, credit: 600) == (debt: 400, taken: 600))
    #expect(gcAssistSettle(debt: 0, charge: 1000, credit: 5000) == (debt: 0, taken: 1000))
    // A thread's own credit (negative debt, from an assist that marked more than it owed) pays first.
    #expect(gcAssistSettle(debt: -3000, charge: 1000, credit: 5000) == (debt: -2000, taken: 0))
    #expect(gcAssistSettle(debt: -500, charge: 1000, credit: 0) == (debt: 500, taken: 0))
  }

  /// Go's 25 % background utilisation: dedicated workers, or a fractional one when rounding is off by more than 30 %.
  @Test func backgroundWorkersFollowGoSplit() {
    #expect(gcBackgroundWorkers(procs: 1) == (dedicated: 0, fraction: 0.25))
    #expect(gcBackgroundWorkers(procs: 2) == (dedicated: 0, fraction: 0.5))
    #expect(gcBackgroundWorkers(procs: 3) == (dedicated: 0, fraction: 0.75))
    #expect(gcBackgroundWorkers(procs: 4) == (dedicated: 1, fraction: 0))
    #expect(gcBackgroundWorkers(procs: 6) == (dedicated: 1, fraction: 0.5))
    #expect(gcBackgroundWorkers(procs: 8) == (dedicated: 2, fraction: 0))
    #expect(gcBackgroundWorkers(procs: 16) == (dedicated: 4, fraction: 0))
  }

  /// Idle workers (Go's idle mark workers): the CPUs the program's threads and the dedicated
  /// workers leave free mark too; the fractional worker only when none is free.
  @Test func idleWorkersTakeFreeCPUs() {
    #expect(gcMarkWorkers(procs: 2, threads: 1) == (workers: 1, fraction: 0, idle: 1))
    #expect(gcMarkWorkers(procs: 2, threads: 2) == (workers: 1, fraction: 0.5, idle: 0))
    #expect(gcMarkWorkers(procs: 2, threads: 9) == (workers: 1, fraction: 0.5, idle: 0))
    #expect(gcMarkWorkers(procs: 1, threads: 1) == (workers: 1, fraction: 0.25, idle: 0))
    #expect(gcMarkWorkers(procs: 4, threads: 1) == (workers: 3, fraction: 0, idle: 2))
    #expect(gcMarkWorkers(procs: 4, threads: 3) == (workers: 1, fraction: 0, idle: 0))
    #expect(gcMarkWorkers(procs: 6, threads: 1) == (workers: 5, fraction: 0, idle: 4))
    #expect(gcMarkWorkers(procs: 6, threads: 5) == (workers: 2, fraction: 0.5, idle: 0))
    #expect(gcMarkWorkers(procs: 16, threads: 4) == (workers: 12, fraction: 0, idle: 8))
    #expect(gcMarkWorkers(procs: 16, threads: 0) == (workers: 15, fraction: 0, idle: 11))
  }

  /// The CPU limiter's bucket (MGCLimiter): fills with collector time, drains with the program's, one second per CPU deep.
  @Test func limiterBucket() {
    let s: UInt64 = 1_000_000_000
    // 2 CPUs, 100 ms: the collector took 150 of the 200 CPU-ms: +100 ms in the bucket.
    #expect(gcLimiterStep(fill: 0, gcNs: 150_000_000, wallNs: 100_000_000, procs: 2) == (fill: 100_000_000, on: false))
    // It drains when the program has more than half.
    #expect(gcLimiterStep(fill: 100_000_000, gcNs: 50_000_000, wallNs: 100_000_000, procs: 2) == (fill: 0, on: false))
    // Full at one second per CPU: the limiter is on, and the bucket never holds more.
    #expect(gcLimiterStep(fill: 2 * s - 10, gcNs: 200_000_000, wallNs: 100_000_000, procs: 2) == (fill: 2 * s, on: true))
    #expect(gcLimiterStep(fill: 2 * s, gcNs: 100_000_000, wallNs: 100_000_000, procs: 2) == (fill: 2 * s, on: true))
    #expect(gcLimiterStep(fill: 2 * s, gcNs: 90_000_000, wallNs: 100_000_000, procs: 2).on == false)
  }

  /// GOALLOC_DEBUG=gctrace=1's line (output.c), field by field.
  @Test func gctraceLineFormat() {
    var t = goalloc_gctrace()
    t.cycle = 3; t.since_ns = 512_345_678; t.percent = 2
    t.clock_ns = (10_000, 1_234_567, 20_000); t.cpu_ns = 12_500_000
    t.heap_start = 4 << 20; t.heap_end = (4 << 20) + 5; t.heap_marked = 2 << 20; t.goal = 5 << 20
    t.stacks = 0; t.globals = 1 << 20; t.procs = 2; t.forced = 1
    var buf = [CChar](repeating: 0, count: 512)
    let n = goalloc_format_gctrace(&t, &buf, 512)
    let line = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    #expect(line == "gc 3 @0.512s 2%: 0.010+1.2+0.020 ms clock, 12 ms cpu, 4->4->2 MB, 5 MB goal, 0 MB stacks, 1 MB globals, 2 P (forced)\n")
    t.forced = 0; t.clock_ns = (0, 99_999, 10_000_000); t.cpu_ns = 999
    let m = goalloc_format_gctrace(&t, &buf, 512)
    let plain = String(decoding: buf[0..<m].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    #expect(plain.hasPrefix("gc 3 @0.512s 2%: 0+0.099+10 ms clock, 0 ms cpu,") && plain.hasSuffix(" 2 P\n"), "\(plain)")
    // A concurrent cycle: Go's cpu split (stop 1 + assist/background/idle + stop 2) and the mechanism.
    t.cpu_split_ns = (40_000, 500_000, 1_000_000, 0, 80_000); t.dirty_pages = 12
    let c = "uffd".withCString { name -> String in
      t.conc = name
      let k = goalloc_format_gctrace(&t, &buf, 512)
      return String(decoding: buf[0..<k].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    #expect(c.hasPrefix("gc 3 @0.512s 2%: 0+0.099+10 ms clock, 0.040+0.50/1.0/0+0.080 ms cpu, 4->4->2 MB,")
            && c.hasSuffix(" 2 P, conc uffd 12 pages\n"), "\(c)")
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
