// Pool<T> (Go's sync.Pool over GoAllocCore's pools): get and put, make, threads stealing and
// handing objects across, the victim rule over collections, the scavenger's ticks and
// releaseFreeMemory. (The C API's scenarios, one process each, are PreloadTests/PoolCTests.)
// Rotations may come from other tests' collections and trims (they hold the exclusive lock,
// which these tests take too) and, before any test used the GC mode, from the scavenger's clock:
// the counts checked here hold whatever rotations run meanwhile unless they hold the lock.

import CGoAllocShim
import Foundation
import GoAlloc
import GoAllocCore
import Synchronization
import Testing

struct PoolItem {
  var owner: UInt = 0   // who holds it (0: the pool), changed atomically
  var id: Int = 0
  var payload: (UInt64, UInt64, UInt64) = (0, 0, 0)
}

@inline(__always) func ownerWord(_ p: UnsafeMutablePointer<PoolItem>) -> UnsafeMutablePointer<Atomic<UInt>> {
  UnsafeMutableRawPointer(p).assumingMemoryBound(to: Atomic<UInt>.self)
}

/// Starts n threads running body(0..<n); the returned function joins them (so their caches are
/// gone, and the counters settled, when it returns: the other tests compare global counters).
func startThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) -> () -> Void {
  final class Job {
    let body: @Sendable (Int) -> Void
    let index: Int
    init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
  }
  var tids: [pthread_t] = []
  for i in 0..<n {
    var t = pthread_t()
    let job = Unmanaged.passRetained(Job(body, i)).toOpaque()
    let rc = pthread_create(&t, nil, { arg in
      let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
      job.body(job.index)
      return nil
    }, job)
    precondition(rc == 0, "pthread_create failed")
    tids.append(t)
  }
  return { for t in tids { pthread_join(t, nil) } }
}

@Suite(.serialized) struct PoolTests {
  @Test("get makes a value when empty; a put value comes back as it was")
  func getPut() { _withExclusiveGlobalHeapForTesting {
    let pool = Pool<PoolItem> { PoolItem(owner: 0, id: 7) }
    let a = pool.get()!
    #expect(a.pointee.id == 7 && pool.stats.created == 1)
    #expect(GoAlloc.usableSize(a) >= MemoryLayout<PoolItem>.stride)
    a.pointee.payload.2 = 99
    pool.put(a)
    let b = pool.get()!
    #expect(b == a && b.pointee.payload.2 == 99 && pool.stats.created == 1)
    pool.put(b)
    #expect(_poolSlotForTesting() >= 0)
  } }

  @Test("without make: nil on empty; memory from GoAlloc.allocate can be put")
  func noMake() { _withExclusiveGlobalHeapForTesting {
    let pool = Pool<UInt64>()
    #expect(pool.get() == nil)
    let p = GoAlloc.allocate(8)!.assumingMemoryBound(to: UInt64.self)
    pool.put(p)
    #expect(pool.get() == p && pool.get() == nil)
    GoAlloc.deallocate(p)
    #expect(Pool<(UInt8, UInt8)>().stats.size == 2)
  } }

  @Test("threads get, put and hand objects to each other: none lost, none handed to two callers")
  func threads() { _withExclusiveGlobalHeapForTesting {
    let pool = Pool<PoolItem>()
    let n = 200
    for i in 0..<n {
      let p = GoAlloc.allocateZeroed(MemoryLayout<PoolItem>.stride)!.assumingMemoryBound(to: PoolItem.self)
      p.pointee.id = i
      pool.put(p)
    }
    let doubles = Atomic<Int>(0)
    // Objects in transit to another thread: atomic slots (a captured Mutex of an array shows
    // as an access race to ThreadSanitizer's exclusivity checks).
    let mailboxSlots = 64
    nonisolated(unsafe) let mailbox = UnsafeMutablePointer<Atomic<UInt>>.allocate(capacity: mailboxSlots)
    for k in 0..<mailboxSlots { (mailbox + k).initialize(to: Atomic<UInt>(0)) }
    defer { mailbox.deallocate() }
    let post: @Sendable (UInt) -> Bool = { x in
      for k in 0..<mailboxSlots where mailbox[k].compareExchange(expected: 0, desired: x, ordering: .acquiringAndReleasing).exchanged {
        return true
      }
      return false
    }
    let take: @Sendable () -> UInt? = {
      for k in 0..<mailboxSlots {
        let x = mailbox[k].exchange(0, ordering: .acquiringAndReleasing)
        if x != 0 { return x }
      }
      return nil
    }
    startThreads(8) { t in
      let me = UInt(t + 1)
      var held: [UnsafeMutablePointer<PoolItem>] = []
      for i in 0..<4000 {
        for _ in 0..<(1 + (i * 7 + t) % 9) {
          guard let p = pool.get() else { break }
          if !ownerWord(p).pointee.compareExchange(expected: 0, desired: me, ordering: .acquiringAndReleasing).exchanged {
            doubles.add(1, ordering: .relaxed)
          }
          p.pointee.payload.0 &+= 1
          held.append(p)
        }
        for (j, p) in held.enumerated() {
          ownerWord(p).pointee.store(0, ordering: .releasing)
          if j == 0 && i % 3 == 0 {
            if !post(UInt(bitPattern: p)) { pool.put(p) }  // another thread puts it
          } else {
            pool.put(p)
          }
        }
        held.removeAll(keepingCapacity: true)
        if let x = take() { pool.put(UnsafeMutablePointer(bitPattern: x)!) }
      }
    }()
    while let x = take() { pool.put(UnsafeMutablePointer(bitPattern: x)!) }
    #expect(doubles.load(ordering: .relaxed) == 0)
    // The workers exited: their private objects went to their chains, where this thread finds
    // them.
    var seen = Set<UnsafeMutablePointer<PoolItem>>()
    while let p = pool.get() {
      #expect(seen.insert(p).inserted, "an object came out twice")
    }
    let s = pool.stats
    #expect(seen.count + Int(s.dropped) == n && s.pooled == 0, "drained \(seen.count), dropped \(s.dropped), left \(s.pooled)")
    for p in seen { GoAlloc.deallocate(p) }
  } }

  @Test("rotations back to back while a thread gets and puts its private object: never both")
  func rotationRacesPrivateSlot() { _withExclusiveGlobalHeapForTesting {
    let pool = Pool<PoolItem>()
    let made = 64
    for _ in 0..<made { pool.put(GoAlloc.allocateZeroed(MemoryLayout<PoolItem>.stride)!.assumingMemoryBound(to: PoolItem.self)) }
    let stop = Atomic<Bool>(false), doubles = Atomic<Int>(0)
    let join = startThreads(1) { _ in
      while !stop.load(ordering: .relaxed) {
        guard let p = pool.get() else { continue }
        if !ownerWord(p).pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged {
          doubles.add(1, ordering: .relaxed)
        }
        ownerWord(p).pointee.store(0, ordering: .releasing)
        pool.put(p)
      }
    }
    var added = 0
    for i in 0..<20_000 {
      _ = _poolsRotateForTesting(times: 1)
      if i % 2 == 0 {  // (two rotations drop what one moved aside: keep the pool fed)
        pool.put(GoAlloc.allocateZeroed(MemoryLayout<PoolItem>.stride)!.assumingMemoryBound(to: PoolItem.self))
        added += 1
      }
    }
    stop.store(true, ordering: .relaxed)
    join()
    #expect(doubles.load(ordering: .relaxed) == 0)
    var drained = 0
    while let p = pool.get() { GoAlloc.deallocate(p); drained += 1 }
    let s = pool.stats
    #expect(drained + Int(s.dropped) == made + added, "drained \(drained), dropped \(s.dropped), made \(made + added)")
  } }

  @Test("without membarrier(2) a thread takes the lock every time: same results")
  func withoutFastPaths() { _withExclusiveGlobalHeapForTesting {
    let pool = Pool<PoolItem> { PoolItem(owner: 0, id: 3) }
    let old = _poolSetFastPathsForTesting(false)
    defer { _ = _poolSetFastPathsForTesting(old) }
    startThreads(1) { _ in
      let a = pool.get()!, b = pool.get()!
      a.pointee.id = 11
      pool.put(a)
      pool.put(b)
      let c = pool.get()!
      #expect(c == a && c.pointee.id == 11)
      #expect(_poolSlotForTesting() > 0)
      pool.put(c)
      _ = _poolsRotateForTesting(times: 1)  // the private object moves aside, a Get still finds it
      let d = pool.get()!, e = pool.get()!
      #expect(pool.stats.created == 2 && Set([d, e]) == Set([a, b]))
      pool.put(d)
      pool.put(e)
    }()
  } }

  @Test("victim rule: one collection moves everything aside, the second frees it",
        .enabled(if: goalloc_built_with_tsan() == 0, "stop-the-world signals are deferred by ThreadSanitizer"))
  func victimRotation() { _withExclusiveGlobalHeapForTesting {
    let pool = Pool<PoolItem> { PoolItem() }
    GC.collect()  // the GC mode is on from here: only collections and trims rotate
    let items = (0..<50).map { _ in pool.get()! }
    for p in items { pool.put(p) }
    let before = pool.stats
    #expect(before.pooled == 50 && before.victims == 0)
    #expect(GC.collect())
    var s = pool.stats
    #expect(s.pooled == 0 && s.victims == 50 && s.dropped == before.dropped && s.rotations == before.rotations + 1)
    let back = pool.get()!
    #expect(items.contains(back) && pool.stats.created == before.created, "found in the victim cache")
    pool.put(back)
    #expect(GC.collect())
    s = pool.stats
    #expect(s.victims == 1 && s.dropped == before.dropped + 49)
    #expect(GC.collect())
    s = pool.stats
    #expect(s.pooled == 0 && s.victims == 0 && s.dropped == before.dropped + 50)
  } }

  @Test("without the GC mode the scavenger's ticks rotate: every 10th tick")
  func ticks() { _withExclusiveGlobalHeapForTesting {
    let pool = Pool<PoolItem> { PoolItem() }
    let items = (0..<30).map { _ in pool.get()! }
    for p in items { pool.put(p) }
    _ = _poolsTickForTesting(10)  // (the real scavenger's ticks may add rotations: never fewer)
    var s = pool.stats
    #expect(s.pooled == 0 && s.victims + s.dropped == 30)
    _ = _poolsTickForTesting(10)
    s = pool.stats
    #expect(s.pooled == 0 && s.victims == 0 && s.dropped == 30)
  } }

  @Test("releaseFreeMemory (malloc_trim) frees everything every pool holds")
  func trim() { _withExclusiveGlobalHeapForTesting {
    let a = Pool<PoolItem> { PoolItem() }, b = Pool<UInt8> { 1 }
    let items = (0..<100).map { _ in a.get()! }
    for p in items { a.put(p) }
    b.put(b.get()!)
    let frees = MemStats.read().frees
    GoAlloc.releaseFreeMemory()
    #expect(a.stats.pooled == 0 && a.stats.victims == 0 && a.stats.dropped == 100 && b.stats.dropped == 1)
    #expect(MemStats.read().frees - frees >= 101)
    let fresh = a.get()!
    #expect(a.stats.created == 101)
    a.put(fresh)
  } }
}
