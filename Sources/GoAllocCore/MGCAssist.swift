// MGCAssist: mark assists (Go's gcAssistAlloc, assistWorkPerByte, bgScanCredit). While a
// concurrent mark runs (gcconc), a thread that allocates pays for its allocation by marking, so
// the mark keeps up with the program and the cycle ends near the heap goal.
//
// Charged at the GC refill and at a large collected allocation (never on a fast path): the
// thread's debt grows by the bytes it is about to allocate times `assistWorkPerByte`, the mark
// work still expected (the last cycle's marked bytes, less what this cycle has marked so far;
// past that, a sixteenth of it) over the runway left (heap goal - heapLive). Work is counted in
// bytes marked. The debt is paid first from the workers' credit (`bgCredit`: what they marked
// that no assist has claimed), then by marking: at least `minAssistWork` (Go's 64 KiB), on one of
// the `GCWork.assistSlots` assist markers, with work taken from the global queue and what is
// left of it given back. Paying more than the debt leaves credit for the thread's next charges.
// A thread whose debt cannot be paid (no queued work, or every assist marker busy) goes on, and
// the workers share their local work at their next balance (`assistWanted`) so that its next
// charge finds some; once the heap reaches its hard goal (MGCPacer.gcHardGoal: the goal and a
// twentieth) it marks whatever is queued and then waits for the cycle's end (MGC.gcCollect's
// stall).
//
// Invariants: a thread's debt (its GC cache's assistDebtWord) belongs to the cycle in
// assistCycleWord and is dropped when a new cycle starts. An assist runs inside the thread's GC
// critical section (goalloc_gc_enter_busy), so a stop waits for it to end and never sees an
// assist marker in use; it takes work only while `assistOpen` (the concurrent mark and its
// preclean rounds, until stop 2), and between taking and giving back it is counted in
// `assistHolders`, which the workers' termination reads (MGCWork.markIsDone).
import CGoAllocShim

/// Go's gcOverAssistWork: the least an assist marks once it marks at all.
let minAssistWork: UInt64 = 64 << 10
/// How long a debt that found no work sleeps before it looks for credit again, and how long it
/// waits in all at one charge (the rest waits for the next charge: the thread goes on at the
/// workers' pace rather than stopping for the rest of the mark).
let gcAssistParkNs: UInt64 = 20_000
let gcAssistParkMaxNs: UInt64 = 1_000_000

extension UnsafeMutablePointer where Pointee == GCMarker {
  /// Adds what this marker marked since its last flush to the cycle's count and, for a worker,
  /// to the credit assists may claim.
  @inline(never) func flushCredit() {
    let d = pointee.markedBytes &- pointee.flushed
    if d == 0 { return }
    pointee.flushed = pointee.markedBytes
    let w = pointee.work
    atomicAdd64(&w.pointee.markDone, d)
    if pointee.background { atomicAdd64(&w.pointee.bgCredit, d) }
  }
}

/// Go's assistWorkPerByte: the mark work still expected over the runway left (at least
/// minAssistWork). The work expected is the last cycle's marked bytes (`expected`, Go's soft
/// estimate); once the mark has done that much, the heap as it was when the mark began (`hard`,
/// Go's heapScan: all that can be reachable, for a heap that grows), less what is done; past
/// that, a sixteenth of it.
func gcAssistWorkPerByte(expected: UInt64, hard: UInt64, done: UInt64, goal: UInt64, live: UInt64) -> Double {
  let most = Swift.max(hard, expected)
  let remaining = done < expected ? expected - done : done < most ? most - done : most / 16
  let runway = goal > live &+ minAssistWork ? goal - live : minAssistWork
  return Double(remaining) / Double(runway)
}

/// A thread's debt after a charge, and what it takes of the workers' credit to pay it (a
/// negative debt is the thread's own credit: it pays charges first).
func gcAssistSettle(debt: Int64, charge: Int64, credit: UInt64) -> (debt: Int64, taken: UInt64) {
  let d = debt &+ Swift.max(charge, 0)
  if d <= 0 || credit == 0 { return (d, 0) }
  let take = Swift.min(credit, UInt64(d))
  return (d - Int64(take), take)
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// The hard goal of the cycle under way (gcHardGoal).
  var gcHardGoalNow: UInt64 {
    gcHardGoal(goal: atomicLoad64(&pointee.heapGoal), limitBound: atomicLoad32(&pointee.limitBound) != 0)
  }

  /// Stop 1 of a concurrent cycle (world stopped, markers prepared): assists may take work.
  func gcAssistsOpen() {
    pointee.assistExpected = Swift.max(pointee.heapMarked, 1 << 20)
    pointee.assistHard = Swift.max(pointee.lastHeapStart, pointee.assistExpected)
    atomicStore32(&pointee.work.pointee.assistOpen, 1)
  }

  /// The concurrent mark and its preclean rounds are over (stop 2 is next): no assist takes any
  /// more work. Records the cycle's assist figures.
  func gcAssistsClose() {
    let w = pointee.work
    lockAcquire(&w.pointee.lock)
    atomicStore32(&w.pointee.assistOpen, 0)
    lockRelease(&w.pointee.lock)
    // (The cycle's figures move to the totals; an assist ending meanwhile adds to the next.)
    let last = (ns: atomicExchange64(&pointee.assistNs, 0), bytes: atomicExchange64(&pointee.assistBytes, 0),
                count: atomicExchange64(&pointee.assistCount, 0))
    pointee.lastAssist = last
    pointee.totalAssists = (pointee.totalAssists.ns &+ last.ns, pointee.totalAssists.bytes &+ last.bytes,
                            pointee.totalAssists.count &+ last.count)
  }

  /// Charges `bytes` of allocation by a thread whose debt and its cycle are in debtWord and
  /// cycleWord (its GC cache's), and pays the debt (see the header). Outside the thread's
  /// critical section; takes no allocator lock.
  @inline(never) func gcAssistAlloc(debtWord: UnsafeMutablePointer<UInt64>, cycleWord: UnsafeMutablePointer<UInt64>,
                                    bytes: Int) {
    let w = pointee.work
    let cycle = UInt64(atomicLoad32(&pointee.numGC))
    if cycleWord.pointee != cycle {
      cycleWord.pointee = cycle
      debtWord.pointee = 0
    }
    let goal = atomicLoad64(&pointee.heapGoal), live = atomicLoad64(&pointee.heapLive)
    let perByte = gcAssistWorkPerByte(expected: pointee.assistExpected, hard: pointee.assistHard,
                                      done: atomicLoad64(&w.pointee.markDone),
                                      goal: live < goal ? goal : gcHardGoalNow, live: live)
    // The charge, paid from the workers' credit first.
    var debt = gcTakeCredit(Int64(bitPattern: debtWord.pointee), charge: Int64(Double(bytes) * perByte))
    if debt > 0 {
      let done = gcAssist(budget: Swift.max(UInt64(debt), minAssistWork))
      if done > 0 {
        debt -= Int64(done)
      } else if !gcLimiting {
        debt = gcAssistWaitForCredit(debt)
      }
    }
    debtWord.pointee = UInt64(bitPattern: debt)
  }

  /// One assist inside the thread's critical section (a stop waits for it), counted in the
  /// cycle's assist figures when it marked; returns the bytes marked.
  func gcAssist(budget: UInt64) -> UInt64 {
    let t0 = goalloc_nanotime()
    goalloc_gc_enter_busy()
    let done = gcAssistWork(budget: budget)
    goalloc_gc_leave_busy()
    if done > 0 {
      atomicAdd64(&pointee.assistNs, goalloc_nanotime() &- t0)
      atomicAdd64(&pointee.assistBytes, done)
      atomicAdd64(&pointee.assistCount, 1)
    }
    return done
  }

  /// Pays what it can of `debt` from the workers' credit; returns what is still owed.
  func gcTakeCredit(_ debt: Int64, charge: Int64 = 0) -> Int64 {
    let w = pointee.work
    while true {
      let c = atomicLoad64(&w.pointee.bgCredit)
      let (d, take) = gcAssistSettle(debt: debt, charge: charge, credit: c)
      if take == 0 || atomicCAS64(&w.pointee.bgCredit, c, c - take) { return d }
    }
  }

  /// Go's gcParkAssist: a debt that found no queued work waits for the workers' credit (or for
  /// work to appear: at most 1 MiB of it marked at a time; or for the mark to end, the cycle's
  /// count showing it even if the next mark has begun), at most gcAssistParkMaxNs at one charge
  /// (stops included), so the thread slows to the workers' pace a little at each charge instead
  /// of running on until the heap's goal stops it for the rest of the mark. The sleeps are a
  /// stall (GCStalls, GCStallNs, GCStallMaxNs).
  func gcAssistWaitForCredit(_ owed: Int64) -> Int64 {
    let w = pointee.work
    var debt = owed
    var slept: UInt64 = 0
    let cycle = atomicLoad32(&pointee.numGC), began = goalloc_nanotime()
    while debt > 0 && atomicLoad32(&w.pointee.assistOpen) != 0 && atomicLoad32(&pointee.numGC) == cycle
            && goalloc_nanotime() &- began < gcAssistParkMaxNs {
      debt = gcTakeCredit(debt)
      if debt <= 0 { break }
      let done = gcAssist(budget: Swift.min(Swift.max(UInt64(debt), minAssistWork), minAssistWork &* 16))
      if done > 0 {
        debt -= Int64(done)
        continue
      }
      atomicStoreRelaxed32(&w.pointee.assistWanted, 1)
      let t = goalloc_nanotime()
      goalloc_nap_ns(gcAssistParkNs)  // (a stop ends it: the loop then sees a cycle end at once)
      slept &+= goalloc_nanotime() &- t
    }
    if slept > 0 { gcRecordStall(slept) }
    return debt
  }

  /// A wait of an allocation for the mark, into the stall figures.
  func gcRecordStall(_ ns: UInt64) {
    atomicAdd64(&pointee.stalls, 1)
    atomicAdd64(&pointee.stallNs, ns)
    while true {
      let m = atomicLoad64(&pointee.stallMaxNs)
      if ns <= m || atomicCAS64(&pointee.stallMaxNs, m, ns) { break }
    }
  }

  /// An allocation found the heap at its goal during the mark: before it waits for the cycle's
  /// end it marks whatever the global queue holds (Go parks an assist only when no work is
  /// left), in rounds of `minAssistWork` x 4 so that a stop never waits long for it.
  func gcAssistUntilDone() {
    while atomicLoad32(&pointee.work.pointee.assistOpen) != 0 && gcAssist(budget: minAssistWork &* 4) > 0 {}
  }

  /// Marks about `budget` bytes on an assist marker with work from the global queue; returns
  /// the bytes marked (0: no marker free, or no work queued).
  func gcAssistWork(budget: UInt64) -> UInt64 {
    let w = pointee.work
    if atomicLoad32(&w.pointee.assistOpen) == 0 { return 0 }
    // An assist marker.
    var j = 0
    while true {
      let busy = atomicLoad32(&w.pointee.assistBusy)
      let free = ~busy & ((1 << UInt32(GCWork.assistSlots)) - 1)
      if free == 0 { return 0 }
      j = free.trailingZeroBitCount
      if atomicCAS32(&w.pointee.assistBusy, busy, busy | (1 << UInt32(j))) { break }
    }
    defer { _ = atomicAnd32(&w.pointee.assistBusy, ~(1 << UInt32(j))) }
    let m = w.pointee.markers + (GCWork.maxMarkWorkers + j)
    let start = m.pointee.markedBytes
    var first = true
    while m.pointee.markedBytes &- start < budget {
      lockAcquire(&w.pointee.lock)
      if atomicLoad32(&w.pointee.assistOpen) == 0 || !m.takeLocked() {
        lockRelease(&w.pointee.lock)
        // None queued: the workers give some away at their next balance; the debt waits.
        if first { atomicStoreRelaxed32(&w.pointee.assistWanted, 1) }
        break
      }
      if first { atomicAdd64(&w.pointee.assistHolders, 1) }
      first = false
      lockRelease(&w.pointee.lock)
      m.drain(budget: budget &- (m.pointee.markedBytes &- start))
    }
    if !first { m.giveBack() }
    return m.pointee.markedBytes &- start
  }
}

extension UnsafeMutablePointer where Pointee == GCMarker {
  /// An assist's end: its local work back to the global queue, and it stops holding work.
  func giveBack() { spillAll(holding: true) }

  /// All local work to the global queue (what does not fit is left to the overflow recovery:
  /// marked, not scanned); `holding`: an assist, which then stops holding work.
  func spillAll(holding: Bool) {
    let w = pointee.work
    lockAcquire(&w.pointee.lock)
    let g = w.globalQueue
    _ = queue.move(to: g, items: queue.pointee.count, chunks: queue.pointee.chunkCount, fifo: !pointee.objectQueue)
    if !queue.pointee.isEmpty {
      // No room: each dropped item made findable by the recovery again (marked, not scanned).
      while queue.pointee.count > 0 {
        let x = queue.popFirst()
        if !pointee.objectQueue {
          atomicStoreSeqCst8(&SpanPtr(bitPattern: x).unsafelyUnwrapped.pointee.gcqueued, 0)
        } else if let s = spanOfIndex(pointee.arenas, x) {
          let i = s.objIndex(x)
          atomicAnd64(s.localWord(i &>> 6), ~(1 &<< UInt64(i & 63)))
        }
      }
      while queue.pointee.chunkCount > 0 {
        let (lo, _) = queue.popChunk()
        if let s = spanOfIndex(pointee.arenas, lo) { atomicAnd64(s.localWord(0), ~1) }
      }
      noteOverflow()
    }
    atomicStore64(&w.pointee.globalCount, UInt64(g.pointee.size))
    if holding { atomicAdd64(&w.pointee.assistHolders, UInt64.max) }  // (- 1)
    lockRelease(&w.pointee.lock)
    w.wakeIdle()
  }
}
