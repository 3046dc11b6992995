// MGCLimiter: the GC CPU limiter (Go's gcCPULimiter). When the collector's share of the CPU
// stays above half for about a second, as it does when a memory limit holds the heap just above
// the live data (every cycle frees little, so cycles follow each other), the collector backs
// off and lets the heap pass the memory limit, instead of leaving the program no time to run.
//
// A bucket of CPU time, one second per CPU (`GOALLOC_GC_PROCS`) deep, fills with the collector's
// CPU time and drains with the program's, both counted when a cycle ends: a stopped world costs
// every CPU for its length, a concurrent mark its workers' and assists' CPU time. While the
// bucket is full the limiter is on, and:
//   - a cycle that only the memory limit asks for (the GOGC goal is further away, or GOGC is
//     off) starts only once the program has run, since the last cycle ended, at least as long
//     as that cycle's pauses: the collector's share stays near half (MGC.gcCollect);
//   - a concurrent mark takes no assists, and an allocation never waits at the goal for it.
// Forced collections (goalloc_gc_collect) are never held back. The limiter turns off when the
// program's time has drained the bucket below full again.
import CGoAllocShim

/// The bucket's depth per CPU (Go: one second of CPU time per P).
let gcLimiterWindowNs: UInt64 = 1_000_000_000

/// The bucket after one update (pure: the tests check it): it fills by `gcNs`, drains by the
/// rest of `wallNs x procs`, and stays within 0...window x procs. Returns the new level and
/// whether the limiter is on (the bucket full).
func gcLimiterStep(fill: UInt64, gcNs: UInt64, wallNs: UInt64, procs: Int) -> (fill: UInt64, on: Bool) {
  let p = UInt64(Swift.max(procs, 1))
  let cap = gcLimiterWindowNs &* p
  let total = wallNs &* p
  let gc = Swift.min(gcNs, total)
  let mutator = total - gc
  var f = fill &+ gc
  f = f > mutator ? f - mutator : 0
  f = Swift.min(f, cap)
  return (f, f >= cap)
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// A cycle ended (collector's lock held): its CPU time goes into the bucket, the time since the
  /// last update drains it. `concurrent`: the cycle marked beside the program.
  func gcLimiterUpdate(concurrent: Bool) {
    let now = goalloc_nanotime()
    let procs = Swift.max(1, pointee.workers.pointee.procs)
    var gcNs = pointee.lastCyclePauseNs &* UInt64(procs)
    if concurrent { gcNs &+= pointee.lastCPUSplit.1 &+ pointee.lastCPUSplit.2 }
    let wall = pointee.limiterLast == 0 ? now &- pointee.startNanos : now &- pointee.limiterLast
    pointee.limiterLast = now
    let (fill, on) = gcLimiterStep(fill: pointee.limiterFill, gcNs: gcNs, wallNs: wall, procs: procs)
    pointee.limiterFill = fill
    if on { pointee.limitedCycles &+= 1 }
    atomicStore64(&pointee.lastCycleEnd, now)
    atomicStore64(&pointee.lastCycleGCNs, pointee.lastCyclePauseNs)
    atomicStore32(&pointee.limiting, on ? 1 : 0)
  }

  /// Whether the limiter holds back a cycle the allocation trigger asks for now.
  @inline(never) func gcLimiterDefers() -> Bool {
    if atomicLoad32(&pointee.limitBound) == 0 { return false }  // (GOGC's goal: never held back)
    return goalloc_nanotime() &- atomicLoad64(&pointee.lastCycleEnd) < atomicLoad64(&pointee.lastCycleGCNs)
  }

  /// Whether the limiter is on (assists and stalls are off then).
  @inline(__always) var gcLimiting: Bool { atomicLoadRelaxed32(&pointee.limiting) != 0 }
}
