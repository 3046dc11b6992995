// MemStats snapshots taken while other threads allocate and free keep Go's identities.
import Foundation
import GoAlloc
import GoAllocCore
import Synchronization
import Testing

private final class Workers: Sendable {
  let stop = Atomic<Bool>(false)
  let finished = Atomic<Int>(0)
  let operations = Atomic<Int>(0)
}

@Suite("MemStats under concurrent allocation")
struct MemStatsConcurrencyTests {
  @Test("4 threads allocate and free while 100 snapshots are read: the identities hold in each")
  func identitiesHoldUnderLoad() {
    _withExclusiveGlobalHeapForTesting {
      let w = Workers()
      let threads = 4
      for t in 0..<threads {
        let thread = Thread {
          // Sizes across tiny, small, multi-page and large objects.
          let sizes = [8, 13, 24, 100, 600, 1024, 5000, 20_000, 40_000, 300_000]
          var held: [UnsafeMutableRawPointer] = []
          held.reserveCapacity(256)
          var i = 0
          var rng = UInt64(0x9E37_79B9_7F4A_7C15) &* UInt64(t + 1)
          while !w.stop.load(ordering: .relaxed) || i < 2000 {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            let size = sizes[Int(rng % UInt64(sizes.count))]
            if let p = GoAlloc.allocate(size, scan: rng & 1 == 0) {
              p.storeBytes(of: UInt8(truncatingIfNeeded: i), as: UInt8.self)
              held.append(p)
            }
            if held.count >= 200 || rng & 3 == 0, !held.isEmpty {
              let k = Int((rng >> 8) % UInt64(held.count))
              held.swapAt(k, held.count - 1)
              GoAlloc.deallocate(held.removeLast())
            }
            i += 1
          }
          for p in held { GoAlloc.deallocate(p) }
          GoAlloc.flushThreadCache()
          w.operations.add(i, ordering: .relaxed)
          w.finished.add(1, ordering: .releasing)
        }
        thread.start()
      }

      var problems: [String] = []
      var first: MemStats? = nil
      var last = MemStats()
      for n in 0..<100 {
        let m = MemStats.read()
        if first == nil { first = m }
        last = m
        if m.heapIdle + m.heapInuse != m.heapSys {
          problems.append("snapshot \(n): HeapIdle \(m.heapIdle) + HeapInuse \(m.heapInuse) != HeapSys \(m.heapSys)")
        }
        if m.mallocs < m.frees || m.mallocs - m.frees != m.heapObjects {
          problems.append("snapshot \(n): Mallocs \(m.mallocs) - Frees \(m.frees) != HeapObjects \(m.heapObjects)")
        }
        if m.heapAlloc > m.heapInuse {
          problems.append("snapshot \(n): HeapAlloc \(m.heapAlloc) > HeapInuse \(m.heapInuse)")
        }
        if m.heapReleased > m.heapIdle {
          problems.append("snapshot \(n): HeapReleased \(m.heapReleased) > HeapIdle \(m.heapIdle)")
        }
        usleep(500)
      }
      w.stop.store(true, ordering: .relaxed)
      while w.finished.load(ordering: .acquiring) < threads { usleep(1000) }

      #expect(problems.isEmpty, "\(problems.count) broken snapshots:\n\(problems.prefix(10).joined(separator: "\n"))")
      // The snapshots were really taken under load.
      #expect(last.mallocs > (first?.mallocs ?? 0), "no allocation happened between the first and last snapshot")
      #expect(w.operations.load(ordering: .relaxed) >= threads * 2000)
      let end = MemStats.read()
      #expect(end.heapIdle + end.heapInuse == end.heapSys)
      #expect(end.mallocs - end.frees == end.heapObjects)
    }
  }
}
