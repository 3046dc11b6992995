import Foundation
import Testing
import CGoAllocShim
@testable import GoAllocCore

@Suite(.serialized) struct ScavengerTests {
  @Test func releasedPagesAreKnownZeroWhenReused() {
    let h = MHeap.create()!
    let s = h.allocSpan(16, spanclass: .large(noscan: true))!
    #expect(s.pointee.needzero == 0)  // fresh from the OS
    let base = s.pointee.startAddr
    memset(UnsafeMutableRawPointer(bitPattern: base)!, 0xEE, 16 * pageSize)
    h.freeSpan(s)
    let again = h.allocSpan(16, spanclass: .large(noscan: true))!
    #expect(again.pointee.startAddr == base && again.pointee.needzero == 1)  // dirty reuse
    h.freeSpan(again)
    #expect(h.scavenge(maxBytes: Int.max) >= 16 * pageSize)
    #expect(h.pointee.pages.checkInvariants())
    let third = h.allocSpan(16, spanclass: .large(noscan: true))!
    #expect(third.pointee.startAddr == base && third.pointee.needzero == 0)
    let b = UnsafeMutableRawPointer(bitPattern: base)!.assumingMemoryBound(to: UInt8.self)
    #expect((0..<(16 * pageSize)).allSatisfy { b[$0] == 0 })
  }

  @Test func scavengeTakesOnlyFreeUnreleasedPagesAndKeepsCountersConsistent() {
    let h = MHeap.create()!
    var spans: [SpanPtr] = []
    for _ in 0..<40 { spans.append(h.allocSpan(4, spanclass: .large(noscan: true))!) }
    for (i, s) in spans.enumerated() {
      memset(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr)!, 1, 4 * pageSize)
      if i % 2 == 0 { h.freeSpan(s) }
    }
    let stats0 = MemStats.read(h)
    let released = h.scavenge(maxBytes: Int.max, minRunPages: 1)
    #expect(released == 20 * 4 * pageSize)
    let stats1 = MemStats.read(h)
    #expect(stats1.heapReleased - stats0.heapReleased == UInt64(released))
    #expect(stats1.heapIdle == stats0.heapIdle && stats1.heapInuse == stats0.heapInuse)
    #expect(stats1.heapIdle + stats1.heapInuse == stats1.heapSys)
    #expect(h.checkHeap().ok)
    #expect(h.scavenge(maxBytes: Int.max) == 0)  // nothing left to release
  }

  /// After a large free, RSS falls on its own (background scavenger) within a bounded time.
  @Test func rssDropsAfterALargeFree() throws { _withExclusiveGlobalHeapForTesting {
    let size = 256 << 20
    let p = goMalloc(size, mallocMode: true)!
    memset(p, 0x5A, size)
    let high = Int(goalloc_rss_bytes())
    goFree(p)
    goFree(goMalloc(1 << 20, mallocMode: true))  // any slow-path malloc starts the scavenger
    var low = high
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
      low = Int(goalloc_rss_bytes())
      if high - low >= size / 2 { break }
      Thread.sleep(forTimeInterval: 0.1)
    }
    let sc = globalHeap()!.pointee.scavenger.pointee
    #expect(high - low >= size / 2,
            "RSS \(high >> 20) MiB -> \(low >> 20) MiB; scavenger started \(sc.started) ticks \(sc.ticks) released \(sc.releasedBytes >> 20) MiB")
    // And everything goes at once on request.
    let q = goMalloc(size, mallocMode: true)!
    memset(q, 1, size)
    func releasedSoFar() -> UInt64 {  // under the scavenger's lock, as it is written
      let sc = globalHeap()!.pointee.scavenger
      lockAcquire(&sc.pointee.lock)
      defer { lockRelease(&sc.pointee.lock) }
      return sc.pointee.releasedBytes
    }
    let releasedBefore = releasedSoFar()
    goFree(q)
    let before = Int(goalloc_rss_bytes())
    // (The background scavenger may release part of it first: count both.)
    let got = goReleaseFreeMemory()
    let released = Int(releasedSoFar() - releasedBefore)
    #expect(got > 0 && released >= size, "released \(released >> 20) MiB, \(got >> 20) MiB of it on request")
    #expect(before - Int(goalloc_rss_bytes()) >= size * 3 / 4)
  } }
}
