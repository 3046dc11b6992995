// Finalizers, cleanups and weak pointers through the Swift API (GoAlloc.GC), in this process,
// and the specials' own structures (the link index) with @testable access.
import Foundation
import Testing
import GoAlloc
import CGoAllocShim
@testable import GoAllocCore

/// A root for these tests (the test executable's data segment is scanned).
nonisolated(unsafe) var specialsTestRoot: UnsafeMutableRawPointer? = nil

/// Counters bumped by cleanups and finalizers on GoAlloc's cleanup thread.
final class CallCounter: @unchecked Sendable {
  private let lock = NSLock()
  private var counts: [Int: Int] = [:]
  func bump(_ k: Int) { lock.lock(); counts[k, default: 0] += 1; lock.unlock() }
  func count(_ k: Int) -> Int { lock.lock(); defer { lock.unlock() }; return counts[k, default: 0] }
}
let specialsCalls = CallCounter()

/// Zeroes a stretch of the stack below the caller: dead frames keep no stale pointers.
@inline(never) func clearStack() {
  withUnsafeTemporaryAllocation(of: UInt.self, capacity: 4096) { $0.initialize(repeating: 0) }
}

/// Collects and waits (bounded) for the cleanup thread; repeats until `done` or 10 rounds.
func collectUntil(_ done: () -> Bool) {
  for _ in 0..<10 where !done() {
    clearStack()
    GC.collect()
    for _ in 0..<20000 where GC.cleanupsPending > 0 { usleep(500) }
  }
}

@Suite(.serialized, .enabled(if: goalloc_built_with_tsan() == 0, "stop-the-world signals are deferred by ThreadSanitizer"))
struct GCSpecialsSwiftTests {
  /// A held object with a closure cleanup and a weak pointer; neither holds the object.
  @inline(never) func makeHeld(_ key: Int) -> (GC.Cleanup?, GC.WeakPointer?) {
    let p = GC.allocate(64)!
    specialsTestRoot = p
    let c = GC.addCleanup(p) { specialsCalls.bump(key) }
    return (c, GC.WeakPointer(p))
  }

  /// Whether `weak` is the held object's, and points at it (the pointer stays in this frame).
  @inline(never) func pointsAtHeld(_ weak: GC.WeakPointer?) -> Bool {
    guard let weak, let p = specialsTestRoot else { return false }
    return GC.WeakPointer(p) == weak && weak.pointer == p
  }

  @Test func closureCleanupAndWeakPointer() { _withExclusiveGlobalHeapForTesting {
    let (cleanup, weak) = makeHeld(1)
    #expect(cleanup != nil && weak != nil)
    #expect(pointsAtHeld(weak), "two weak pointers from one pointer are equal, and point at it")
    collectUntil { false }
    #expect(specialsCalls.count(1) == 0 && pointsAtHeld(weak), "a held object keeps its cleanup and weak pointer")
    specialsTestRoot = nil
    collectUntil { specialsCalls.count(1) == 1 }
    #expect(specialsCalls.count(1) == 1, "the cleanup ran once")
    #expect(weak?.pointer == nil, "the weak pointer is cleared")
    #expect(cleanup?.cancel() == false, "nothing to cancel after the run")
  } }

  @Test func cancelReleasesTheClosure() { _withExclusiveGlobalHeapForTesting {
    let (cleanup, _) = makeHeld(2)
    #expect(cleanup?.cancel() == true)
    #expect(cleanup?.cancel() == false)
    specialsTestRoot = nil
    collectUntil { false }
    #expect(specialsCalls.count(2) == 0, "a cancelled cleanup ran")
  } }

  @inline(never) func makeFinalizable() {
    let p = GC.allocate(64)!
    p.storeBytes(of: 0x5eed, as: Int.self)
    #expect(GC.setFinalizer(p, arg: UnsafeMutableRawPointer(bitPattern: 3)) { obj, arg in
      if obj?.load(as: Int.self) == 0x5eed && arg == UnsafeMutableRawPointer(bitPattern: 3) { specialsCalls.bump(3) }
    })
    #expect(!GC.setFinalizer(p) { _, _ in }, "a second finalizer is refused")
    #expect(GC.addCleanup(p, arg: p + 8) { _ in } == nil, "an arg pointing into the object is refused")
  }

  @Test func finalizerSeesItsObject() { _withExclusiveGlobalHeapForTesting {
    makeFinalizable()
    collectUntil { specialsCalls.count(3) == 1 }
    #expect(specialsCalls.count(3) == 1)
  } }

  /// Random registrations, cancels, explicit frees and collections in this process; the
  /// specials' invariants (sorted lists, tails, counts, only allocated objects) after each step.
  @Test func invariantsHoldThroughRandomOperations() { _withExclusiveGlobalHeapForTesting {
    let n = 600
    let block = GC.allocate(n * 8)!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    specialsTestRoot = UnsafeMutableRawPointer(block)
    var handles: [GC.Cleanup?] = Array(repeating: nil, count: n)
    var rng = SystemRandomNumberGenerator()
    for step in 0..<6000 {
      let i = Int.random(in: 0..<n, using: &rng)
      switch Int.random(in: 0..<10, using: &rng) {
      case 0...2:
        block[i] = GC.allocate(Int.random(in: 8...600, using: &rng))
      case 3:
        if let p = block[i] { handles[i] = GC.addCleanup(p + Int.random(in: 0..<8, using: &rng), arg: nil) { _ in } }
      case 4:
        if let p = block[i] { _ = GC.WeakPointer(p) }
      case 5:
        if let p = block[i] {
          GC.setFinalizer(p, nil)  // (a second finalizer would be refused with a line)
          if Bool.random(using: &rng) { GC.setFinalizer(p) { _, _ in } }
        }
      case 6:
        _ = handles[i]?.cancel()
      case 7:
        if let p = block[i] { GC.free(p); block[i] = nil }
      case 8:
        block[i] = nil
      default:
        if step % 40 == 0 { GC.collect() }
      }
      if let broken = _gcCheckSpecialsForTesting() { Issue.record("step \(step): \(broken)"); break }
    }
    specialsTestRoot = nil
    collectUntil { false }
    #expect(_gcCheckSpecialsForTesting() == nil)
  } }

  /// The link index (bdwgc's disappearing links by address): linear probing with backward-shift
  /// deletion, against a dictionary, through growth and many removals.
  @Test func linkIndexMatchesADictionary() {
    let sp = UnsafeMutablePointer<SpecialsState>.allocate(capacity: 1)
    sp.initialize(to: SpecialsState())
    defer { sp.deallocate() }
    var model: [UInt: SpecialPtr] = [:]
    var rng = SystemRandomNumberGenerator()
    for step in 0..<20000 {
      let key = UInt.random(in: 1...4000, using: &rng) << 3 | (step % 3 == 0 ? 1 : 0)
      if let r = model[key] {
        #expect(sp.linkFind(key) == r)
        sp.linkRemove(key)
        sp.freeRecord(r)
        model[key] = nil
      } else {
        #expect(sp.linkFind(key) == nil)
        let r = sp.newRecord()!
        #expect(sp.linkInsert(key, r))
        model[key] = r
      }
    }
    #expect(sp.pointee.nlinks == model.count)
    for (k, r) in model { #expect(sp.linkFind(k) == r) }
  }
}
