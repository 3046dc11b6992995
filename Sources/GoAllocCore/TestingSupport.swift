// TestingSupport: hooks for the package's own tests (`package` access: not part of any
// product's API). See Malloc.swift for an overview of the allocator.
import CGoAllocShim

nonisolated(unsafe) var exclusiveTestLock: LockWord = 0

/// Runs `body` while no other caller of this function runs: tests that compare global counters
/// (in any test target of the process) serialize through it.
package func _withExclusiveGlobalHeapForTesting<T>(_ body: () -> T) -> T {
  lockAcquire(&exclusiveTestLock)
  defer { lockRelease(&exclusiveTestLock) }
  return body()
}

/// The GC mode's mark queues limited to `spans` spans and `chunks` large-object pieces (tests
/// force the overflow recovery with small limits; 0 restores the full capacity).
package func _gcSetWorkLimitsForTesting(spans: Int, chunks: Int) {
  guard let h = globalHeap(), let gc = h.gcState() else { return }
  lockAcquire(&gc.pointee.lock)
  gc.pointee.work.pointee.spanLimit = spans > 0 ? min(spans, GCWork.spanCapacity) : GCWork.spanCapacity
  gc.pointee.work.pointee.chunkLimit = chunks > 0 ? min(chunks, GCWork.chunkCapacity) : GCWork.chunkCapacity
  lockRelease(&gc.pointee.lock)
}

/// The number of mark workers (GOALLOC_GC_PROCS); returns the old one.
package func _gcSetProcsForTesting(_ n: Int) -> Int {
  guard let h = globalHeap(), let gc = h.gcState() else { return 1 }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  let old = gc.pointee.workers.pointee.procs
  gc.pointee.workers.pointee.procs = max(1, min(n, GCWork.maxMarkWorkers))
  return old
}

/// Mark workers the last cycle used.
package func _gcLastMarkWorkersForTesting() -> Int {
  guard let h = globalHeap(), let gc = h.gcExisting else { return 0 }
  return gc.pointee.work.pointee.workersUsed
}

/// Marks small objects through the object queue (GOALLOC_DEBUG=gcobjqueue=1) or Green Tea's
/// span queue; returns the old setting.
package func _gcSetObjectQueueForTesting(_ on: Bool) -> Bool {
  guard let h = globalHeap(), let gc = h.gcState() else { return false }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  let old = gc.pointee.work.pointee.objectQueue
  gc.pointee.work.pointee.objectQueue = on
  return old
}

/// Sets the GC mode's sweep mode (GCSweepMode: 0 lazy, 1 eager, 2 ondemand); returns the old one.
package func _gcSetSweepModeForTesting(_ mode: UInt32) -> UInt32 {
  guard let h = globalHeap(), let gc = h.gcState() else { return 0 }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  let old = gc.pointee.sweepMode
  gc.pointee.sweepMode = mode
  return old
}

/// The lazy sweep's state: spans on unswept lists, spans on any list, the heap's sweepgen, and
/// pages swept since the last flip.
package func _gcSweepStateForTesting() -> (unswept: UInt64, listed: UInt64, sweepgen: UInt32, pagesSwept: UInt64) {
  guard let h = globalHeap(), let gc = h.gcExisting else { return (0, 0, 0, 0) }
  return (atomicLoad64(&gc.pointee.unswept), atomicLoad64(&gc.pointee.listed),
          atomicLoad32(&gc.pointee.sweepgen), atomicLoad64(&gc.pointee.pagesSwept))
}

/// Sweeps one unswept span, as the background sweeper does; -1 when none is left.
package func _gcSweepOneForTesting() -> Int {
  guard let h = globalHeap(), let gc = h.gcExisting else { return -1 }
  return gc.gcSweepOne(h)
}

/// The last cycle's mark work: overflow recovery passes, span-queue visits, objects scanned.
package func _gcLastMarkForTesting() -> (overflows: Int, spansScanned: Int, objectsScanned: Int) {
  guard let h = globalHeap(), let gc = h.gcState() else { return (0, 0, 0) }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  return (gc.pointee.work.pointee.overflows, gc.pointee.work.pointee.spansScanned, gc.pointee.work.pointee.objectsScanned)
}

/// Concurrent marking (GOALLOC_DEBUG=gcconc=1), with gcdirty=barrier when `barrier` (else the
/// mechanism is chosen again), and the checkmark mode, set between cycles; returns the old
/// settings for `_gcRestoreConcurrentForTesting`.
package func _gcSetConcurrentForTesting(_ on: Bool, barrier: Bool, checkmark: Bool) -> (Bool, Int32, Bool) {
  guard let h = globalHeap(), let gc = h.gcState() else { return (false, -1, false) }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  let old = (gc.pointee.conc, gc.pointee.dirtyMode, gc.pointee.checkmark)
  gc.pointee.conc = on
  gc.pointee.dirtyMode = barrier ? Int32(GOALLOC_DIRTY_BARRIER) : -1
  gc.pointee.checkmark = checkmark
  return old
}

/// Puts back what `_gcSetConcurrentForTesting` returned.
package func _gcRestoreConcurrentForTesting(_ old: (Bool, Int32, Bool)) {
  guard let h = globalHeap(), let gc = h.gcState() else { return }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  (gc.pointee.conc, gc.pointee.dirtyMode, gc.pointee.checkmark) = old
}
