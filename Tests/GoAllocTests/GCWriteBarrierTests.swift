// The write barrier through the Swift API (GC.PointerField, GC.writeBarrier): plain semantics
// outside a mark, and linked lists mutated only through it while concurrent cycles run under
// gcdirty=barrier (no written page tracked) with the checkmark mode on.
import Foundation
import Testing
import GoAlloc
import CGoAllocShim
@testable import GoAllocCore

/// The barrier outside any mark: a store and a load (also under ThreadSanitizer: no collection).
@Suite struct GCPointerFieldTests {
  @Test func storeAndLoadOutsideAMark() {
    let words = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 3)
    defer { words.deallocate() }
    words.initialize(repeating: nil, count: 3)
    let base = UnsafeMutableRawPointer(words)
    let a = GC.PointerField(base, offset: 8), b = GC.PointerField(words + 2)
    #expect(a.address == words + 1 && a.load() == nil)
    a.store(base)
    b.store(base + 16)
    #expect(words[1] == base && b.load() == base + 16 && words[0] == nil)
    GC.writeBarrier(words, base + 8)
    #expect(words[0] == base + 8)
    a.store(nil)
    #expect(a.load() == nil && a == GC.PointerField(words + 1) && a != b)
  }
}

/// Roots of the concurrent test: the lists' heads (a collected scan block) are held here.
nonisolated(unsafe) var wbTestHeads: UnsafeMutableRawPointer? = nil
nonisolated(unsafe) var wbTestDone: UInt32 = 0
nonisolated(unsafe) var wbTestBad = -1

/// Not under ThreadSanitizer (collections stop this process's threads: see GCSwiftTests).
@Suite(.serialized, .enabled(if: goalloc_built_with_tsan() == 0, "stop-the-world signals are deferred by ThreadSanitizer"))
struct GCWriteBarrierSwiftTests {
  static let lists = 32
  static let key: UInt = 0x9e37_79b9_7f4a_7c15

  /// A node: [next, id, check = id ^ key], 32 bytes of collected scan memory; `next` is stored
  /// through the barrier.
  struct Node {
    let p: UnsafeMutableRawPointer
    var next: GC.PointerField { GC.PointerField(p, offset: 0) }
    var id: UInt { p.load(fromByteOffset: 8, as: UInt.self) }
    var intact: Bool { p.load(fromByteOffset: 16, as: UInt.self) == id ^ key }
  }

  /// One list's nodes: (count, id sum), or nil when a node is damaged (freed and reused).
  static func walk(_ head: GC.PointerField) -> (Int, UInt)? {
    var n = 0, sum: UInt = 0
    var at = head.load()
    while let p = at {
      let node = Node(p: p)
      if !node.intact || n > 1_000_000 { return nil }
      n += 1
      sum &+= node.id
      at = node.next.load()
    }
    return (n, sum)
  }

  /// The mutator: inserts, drops and moves nodes, every pointer store into collected memory
  /// through a PointerField; checks each list against its shadow now and then. Returns the
  /// lists found wrong.
  static func mutate(ops: Int) -> Int {
    guard let heads = wbTestHeads else { return 1 }
    func head(_ l: Int) -> GC.PointerField { GC.PointerField(heads, offset: 8 * l) }
    var count = [Int](repeating: 0, count: lists), sum = [UInt](repeating: 0, count: lists)
    var rng = SystemRandomNumberGenerator(), nextID: UInt = 0, bad = 0
    for _ in 0..<ops {
      let l = Int.random(in: 0..<lists, using: &rng), l2 = Int.random(in: 0..<lists, using: &rng)
      switch Int.random(in: 0..<100, using: &rng) {
      case 0..<40:  // a new node at the head
        guard let p = GC.allocate(32) else { return bad + 1 }
        nextID += 1
        p.storeBytes(of: nextID, toByteOffset: 8, as: UInt.self)
        p.storeBytes(of: nextID ^ key, toByteOffset: 16, as: UInt.self)
        let node = Node(p: p)
        node.next.store(head(l).load())
        head(l).store(p)
        count[l] += 1
        sum[l] &+= nextID
      case 40..<65:  // drop the head
        if let p = head(l).load() {
          let node = Node(p: p)
          head(l).store(node.next.load())
          count[l] -= 1
          sum[l] &-= node.id
        }
      case 65..<98:  // move the second node of l to the front of l2 (read, unlink, store elsewhere)
        if let first = head(l).load(), let p = Node(p: first).next.load() {
          let node = Node(p: p)
          Node(p: first).next.store(node.next.load())
          count[l] -= 1
          sum[l] &-= node.id
          node.next.store(head(l2).load())
          head(l2).store(p)
          count[l2] += 1
          sum[l2] &+= node.id
        }
      default:
        if let r = walk(head(l)), r == (count[l], sum[l]) {} else { bad += 1 }
      }
    }
    for l in 0..<lists { if let r = walk(head(l)), r == (count[l], sum[l]) {} else { bad += 1 } }
    return bad
  }

  @Test func listsMutatedThroughPointerFieldsSurviveConcurrentCycles() { _withExclusiveGlobalHeapForTesting {
    GC.collect()
    let oldSweep = _gcSetSweepModeForTesting(1)  // (eager: each cycle's frees are done when it returns)
    let old = _gcSetConcurrentForTesting(true, barrier: true, checkmark: true)
    defer {
      _gcRestoreConcurrentForTesting(old)
      _ = _gcSetSweepModeForTesting(oldSweep)
      // Every link cut, so a stale pointer left on a stack keeps one node, not a list, for the
      // next tests' counts of frees.
      if let heads = wbTestHeads {
        for l in 0..<Self.lists {
          let h = GC.PointerField(heads, offset: 8 * l)
          var at = h.load()
          h.store(nil)
          while let p = at {
            at = Node(p: p).next.load()
            Node(p: p).next.store(nil)
          }
        }
      }
      wbTestHeads = nil
      GC.collect()
    }
    wbTestHeads = GC.allocate(8 * Self.lists)
    atomicStore32(&wbTestDone, 0)
    let n0 = MemStats.read().numGC
    wbTestBad = -1
    let t = Thread {
      wbTestBad = Self.mutate(ops: 100_000)
      atomicStore32(&wbTestDone, 1)
    }
    t.stackSize = 1 << 20
    t.start()
    var collections = 0
    while atomicLoad32(&wbTestDone) == 0 {
      #expect(GC.collect())
      collections += 1
    }
    let m = MemStats.read()
    #expect(wbTestBad == 0, "\(wbTestBad) lists differ from their shadow")
    #expect(m.numGC - n0 >= 3, "\(m.numGC - n0) cycles while the mutator ran (\(collections) forced)")
    #expect(m.gcConc == 4)  // (barrier)
    #expect(globalHeap()!.checkHeap().ok)
  } }
}
