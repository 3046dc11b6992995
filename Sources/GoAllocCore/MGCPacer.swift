// MGCPacer: when the next cycle starts (Go's mgcpacer.go, the Go 1.18+ goal with Go 1.19's
// memory limit).
//
//   goal = marked + (marked + stacks + globals) x GOGC / 100,  at least 4 MiB x GOGC / 100
//   with a memory limit L: goal <= L - (memory not in collected spans) - max(3 % of L, 1 MiB),
//                          but never below marked + 1 MiB (so a heap over its limit still runs)
//   GOGC = off (-1): no goal but the memory limit's.
// `marked` is what the last sweep left in collected objects; stacks and globals are the bytes the
// last mark scanned as roots (globals: image segments, added roots and scanned malloc memory).
// The trigger (Go 1.19+'s clamp): goal - runway, kept between 0.7 and 0.95 of the way from marked
// to goal (45/64 and 61/64; on heaps over 4 MiB the upper bound is at least goal - 4 MiB). The
// runway is what the program allocates while a cycle marks: 0 with the world stopped for the
// mark, where the trigger is the upper bound, taken at 58/64 instead of 61/64 (the heap's peak is
// then up to 3/64 of the way lower for about 5 % more cycles; on a way over 43 MiB goal - 4 MiB
// is the bound, as it was over 85 MiB: docs/PERFORMANCE.md, "The stopped world's trigger"), and
// with concurrent marking (gcconc=1) the bytes allocated during the last concurrent mark, plus an
// eighth, or twice the last runway when an allocation stalled at the goal (which cut that growth
// short); the first cycle, with none measured, uses the lower bound. Checked only where a GC
// cache refills (a span's worth of allocation at a time) or a large collected object is
// allocated, never on a malloc or free fast path. While a concurrent mark runs, allocation pays
// for it with mark assists (MGCAssist); an allocation that still finds the heap at its goal
// waits for the cycle to end (MGC.gcCollect's stall, counted in MemStats.gcStalls).
import CGoAllocShim

/// Go's heapMinimum at GOGC = 100.
let gcHeapMinimum: UInt64 = 4 << 20

/// x * p / 100 without overflow for any heap size.
@inline(__always) func gcPercentOf(_ x: UInt64, _ p: UInt64) -> UInt64 { x / 100 &* p &+ x % 100 &* p / 100 }

/// The heap goal for the given inputs (pure: the tests check the formula).
func gcHeapGoal(marked: UInt64, stacks: UInt64, globals: UInt64, percent: Int32,
                memLimit: UInt64, nonHeap: UInt64) -> UInt64 {
  var goal = UInt64.max
  if percent >= 0 {
    let p = UInt64(percent)
    goal = max(marked &+ gcPercentOf(marked &+ stacks &+ globals, p), gcPercentOf(gcHeapMinimum, p))
  }
  if memLimit > 0 {
    let headroom = max(gcPercentOf(memLimit, 3), 1 << 20)
    let room = memLimit > nonHeap &+ headroom ? memLimit - nonHeap - headroom : 0
    goal = min(goal, max(room, marked &+ (1 << 20)))
  }
  return goal
}

/// The heap size that starts the next cycle (pure: the tests check the clamp).
func gcTrigger(marked: UInt64, goal: UInt64, runway: UInt64) -> UInt64 {
  if marked >= goal { return goal }
  let way = goal - marked
  let lower = marked &+ way / 64 &* 45
  var upper = marked &+ way / 64 &* (runway == 0 ? 58 : 61)
  if goal > gcHeapMinimum && goal - gcHeapMinimum > upper { upper = goal - gcHeapMinimum }
  let t = runway >= goal ? lower : goal - runway
  return min(max(t, lower), max(upper, lower))
}

/// Go's background utilisation goal for a concurrent mark (gcBackgroundUtilization: 25 % of the
/// `procs` CPUs a mark may use; Go's startCycle): whole dedicated workers when rounding misses
/// the goal by at most 30 %, else one fewer than rounded up and a fractional worker for the rest
/// (`fraction` of one CPU, 0 when none).
func gcBackgroundWorkers(procs: Int) -> (dedicated: Int, fraction: Double) {
  let goal = Double(Swift.max(procs, 1)) * 0.25
  var dedicated = Int(goal + 0.5)
  let err = Double(dedicated) / goal - 1
  if err < -0.3 || err > 0.3 {
    if Double(dedicated) > goal { dedicated -= 1 }
    return (dedicated, goal - Double(dedicated))
  }
  return (dedicated, 0)
}

/// Go's hard goal: how far a concurrent mark lets the heap pass its goal before an allocation
/// waits for the mark (a stall): a twentieth more (Go allows a tenth; half of it here keeps the
/// peak within 10 % of the goal with a span's worth per thread on top), and nothing more when
/// the memory limit set the goal. Past the goal, assists pay against the runway to it.
func gcHardGoal(goal: UInt64, limitBound: Bool) -> UInt64 { limitBound ? goal : goal &+ goal / 20 }

/// A concurrent mark's workers: Go's background split (above), plus its *idle* workers: the CPUs
/// that neither one of the program's `threads` (its registered threads when the mark began) nor
/// a dedicated worker occupies mark too, at full speed (Go runs an idle worker on a P with
/// nothing else to run). When there is such a CPU the fractional worker is not needed: it is one
/// of them. `idle`: how many of the workers are idle ones (their CPU time is gctrace's idle part).
/// A program thread blocked in a system call counts as busy, so the estimate errs towards the
/// 25 % goal; other processes' use of the CPUs is not seen.
func gcMarkWorkers(procs: Int, threads: Int) -> (workers: Int, fraction: Double, idle: Int) {
  let p = Swift.max(procs, 1)
  let split = gcBackgroundWorkers(procs: p)
  let free = p - Swift.max(threads, 1) - split.dedicated
  if free >= 1 { return (split.dedicated + free, 0, free) }
  return (Swift.max(split.dedicated + (split.fraction > 0 ? 1 : 0), 1), split.fraction, 0)
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Sets heapGoal from the last cycle's figures and the settings.
  func gcSetGoal(marked: UInt64) {
    pointee.heapMarked = marked
    let goal = gcHeapGoal(marked: marked, stacks: pointee.stackBytes, globals: pointee.globalsBytes,
                          percent: pointee.percent, memLimit: atomicLoad64(&pointee.memLimit), nonHeap: pointee.nonHeap)
    let gogc = gcHeapGoal(marked: marked, stacks: pointee.stackBytes, globals: pointee.globalsBytes,
                          percent: pointee.percent, memLimit: 0, nonHeap: 0)
    atomicStore32(&pointee.limitBound, goal < gogc ? 1 : 0)  // (the CPU limiter's business: MGCLimiter)
    atomicStore64(&pointee.heapGoal, goal)
    atomicStore64(&pointee.heapTrigger, gcTrigger(marked: marked, goal: goal, runway: pointee.runway))
  }

  /// Memory the collector cannot free, for the memory limit: pages of spans that are not
  /// collected (malloc memory), and the metadata. Heap lock held.
  func gcMeasureNonHeap(_ h: UnsafeMutablePointer<MHeap>, collectedSpanBytes: UInt64) {
    let inUse = UInt64(h.pointee.pagesInUse * pageSize) &+ UInt64(h.pointee.persistent.sys)
    pointee.nonHeap = inUse > collectedSpanBytes ? inUse - collectedSpanBytes : 0
  }

  /// Whether an allocation that just grew heapLive should start a cycle.
  @inline(__always) func gcTriggered() -> Bool {
    atomicLoad64(&pointee.heapLive) >= atomicLoad64(&pointee.heapTrigger)
  }
}
