// MGCPacer: when the next cycle starts (Go's mgcpacer.go, the Go 1.18+ goal with Go 1.19's
// memory limit).
//
//   goal = marked + (marked + stacks + globals) x GOGC / 100,  at least 4 MiB x GOGC / 100
//   with a memory limit L: goal <= L - (memory not in collected spans) - max(3 % of L, 1 MiB),
//                          but never below marked + 1 MiB (so a heap over its limit still runs)
//   GOGC = off (-1): no goal but the memory limit's.
// `marked` is what the last sweep left in collected objects; stacks and globals are the bytes the
// last mark scanned as roots (globals: image segments, added roots and scanned malloc memory).
// The trigger is `heapLive >= goal`, checked only where a GC cache refills (a span's worth of
// allocation at a time) or a large collected object is allocated, never on a malloc or free
// fast path. With concurrent marking (gcconc=1) the trigger comes earlier, 7/8 of the way from
// marked to goal (Go clamps its measured runway to 0.7..0.95 of that way; the runway is not
// measured yet), so the mark runs while the heap grows towards its goal; an allocation that
// finds the heap at its goal while the mark still runs waits for the cycle to end (MGC.gcCollect:
// an allocation stall standing in for Go's assists, not built yet).
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

/// The concurrent mode's trigger: 7/8 of the way from marked to goal.
func gcConcTrigger(marked: UInt64, goal: UInt64) -> UInt64 {
  goal > marked ? marked &+ (goal - marked) / 8 &* 7 : goal
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Sets heapGoal from the last cycle's figures and the settings.
  func gcSetGoal(marked: UInt64) {
    pointee.heapMarked = marked
    let goal = gcHeapGoal(marked: marked, stacks: pointee.stackBytes, globals: pointee.globalsBytes,
                          percent: pointee.percent, memLimit: atomicLoad64(&pointee.memLimit), nonHeap: pointee.nonHeap)
    atomicStore64(&pointee.heapGoal, goal)
    atomicStore64(&pointee.heapTrigger, pointee.conc ? gcConcTrigger(marked: marked, goal: goal) : goal)
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
