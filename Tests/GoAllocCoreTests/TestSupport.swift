// Helpers shared by the core tests: a repeatable RNG, real-thread runner, a ledger.
import Foundation
import Testing
@testable import GoAllocCore

/// SplitMix64: repeatable random numbers from a printed seed.
struct RepeatableRNG: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Runs body(i) on `threads` real OS threads (distinct per-thread caches) and joins them.
func runConcurrently(threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
  let group = DispatchGroup()
  for i in 0..<threads {
    group.enter()
    let t = Thread {
      body(i)
      group.leave()
    }
    t.stackSize = 1 << 20
    t.start()
  }
  group.wait()
}

/// Scale for stress tests: GOALLOC_STRESS_SCALE=10 runs ten times longer.
let stressScale: Int = {
  if let s = ProcessInfo.processInfo.environment["GOALLOC_STRESS_SCALE"], let n = Int(s), n > 0 { return n }
  return 1
}()

/// Fills [p, p+n) with a pattern derived from the address; `check` verifies it.
func fillPattern(_ p: UnsafeMutableRawPointer, _ n: Int) {
  let seed = UInt8(truncatingIfNeeded: UInt(bitPattern: p) >> 4)
  let b = p.assumingMemoryBound(to: UInt8.self)
  for i in 0..<n { b[i] = seed &+ UInt8(truncatingIfNeeded: i &* 7) }
}
func checkPattern(_ p: UnsafeMutableRawPointer, _ n: Int) -> Bool {
  let seed = UInt8(truncatingIfNeeded: UInt(bitPattern: p) >> 4)
  let b = p.assumingMemoryBound(to: UInt8.self)
  for i in 0..<n where b[i] != seed &+ UInt8(truncatingIfNeeded: i &* 7) { return false }
  return true
}

/// Sizes across every class edge, plus large ones.
func edgeSizes() -> [Int] {
  var sizes: [Int] = []
  for c in 1..<numSizeClasses {
    let s = SizeClassInfo.size(ofClass: c)
    sizes += [s - 1, s, s + 1].filter { $0 > 0 }
  }
  return sizes + [40_000, 100_000, 1 << 20]
}

/// An address that is surely not a heap object of ours.
nonisolated(unsafe) var someGlobal: UInt64 = 0

/// The invariant checks of heap h and of cache c (its owner is the calling test), as a debug
/// configuration runs them after a slow-path operation.
func expectInvariants(_ h: UnsafeMutablePointer<MHeap>, _ c: MCache?,
                      sourceLocation: SourceLocation = #_sourceLocation) {
  let heap = h.checkHeap()
  #expect(heap.ok, "heap: \(heap.failure)", sourceLocation: sourceLocation)
  if let c {
    let own = c.checkInvariants()
    #expect(own.ok, "cache: \(own.failure)", sourceLocation: sourceLocation)
  }
}
