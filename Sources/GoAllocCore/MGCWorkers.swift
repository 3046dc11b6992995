// MGCWorkers: the mark's helper threads (Go's background mark workers, gcBgMarkWorker), so a
// stop-the-world mark runs on `GOALLOC_GC_PROCS` workers: the collecting thread (worker 0) and
// helpers 1..n-1.
//
// Helpers are started once, by the collecting thread before it takes any allocator lock
// (pthread_create may allocate), and park on a futex (`gen`) between marks. They keep no cache
// (goalloc_tls_state_set(1)), so they are never registered, never sent the stop signal, never
// scanned, and they allocate nothing. A mark wakes `active` of them (`gen` + 1); each that wakes
// while the round is open joins it (`join`), runs the worker loop (MGCWork, MGCMark) and counts
// itself in `done`. When its own loop ends the collector closes the round and waits for the
// helpers that joined, so no helper touches a span after the mark, and a helper the scheduler
// did not run in time (a loaded machine) costs nothing: it finds the round closed and parks
// again (it was counted idle from the start and held no work).
// Helpers belong to a `crew`: a fork child has none (crew + 1), and when the main thread has
// left with pthread_exit they end (crew + 1, taken only between cycles, under the collector's
// lock), since parked threads would keep the process alive. A later cycle starts a new crew.
import CGoAllocShim

/// The helpers' shared state (in the GC state).
struct GCWorkers {
  var procs = 1              // GOALLOC_GC_PROCS: workers per mark, the collector included
  var started = 0            // helpers of the current crew (ids 1...started); collector's lock
  var crew: UInt32 = 0       // atomic
  var gen: UInt32 = 0        // atomic, futex: + 1 per round of marking
  var active: UInt32 = 0     // helpers that mark this round (ids 1...active)
  var done: UInt32 = 0       // atomic, futex: helpers that finished this round
  var join: UInt64 = 0       // atomic: this round's gen << 32 | closed bit 31 | helpers joined
  var startGen: UInt32 = 0   // gen when the helpers were started
  var failed = false         // a thread could not be created: no more tries
  var cpuNs: UInt64 = 0      // atomic: the helpers' CPU time in marking (gctrace's cpu)
  static let parkNanos: UInt64 = 1_000_000_000
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Starts the helpers this cycle needs (collector's lock held, no allocator lock). Returns the
  /// number of workers the mark can use.
  func gcStartWorkers() -> Int {
    let ws = pointee.workers
    let want = Swift.min(ws.pointee.procs, GCWork.maxMarkWorkers)
    if want <= 1 { return 1 }
    if ws.pointee.started < want - 1 && !ws.pointee.failed {
      ws.pointee.startGen = atomicLoad32(&ws.pointee.gen)
      let crew = atomicLoad32(&ws.pointee.crew)
      while ws.pointee.started < want - 1 {
        let id = ws.pointee.started + 1
        let arg = UnsafeMutableRawPointer(bitPattern: UInt(crew) << 8 | UInt(id))
        if goalloc_start_thread(gcWorkerMain, arg) == 0 {
          ws.pointee.failed = true
          break
        }
        ws.pointee.started = id
      }
    }
    return Swift.min(want, ws.pointee.started + 1)
  }

  /// Wakes helpers 1...n-1 for a round of marking (world stopped; their markers prepared).
  func gcWakeWorkers(_ n: Int) {
    let ws = pointee.workers
    ws.pointee.active = UInt32(n - 1)
    atomicStore32(&ws.pointee.done, 0)
    let g = atomicLoad32(&ws.pointee.gen) &+ 1
    atomicStore64(&ws.pointee.join, UInt64(g) << 32)
    _ = atomicAdd32(&ws.pointee.gen, 1)
    goalloc_futex_wake(&ws.pointee.gen, Int32.max)
  }

  /// Closes the round and waits until the helpers that joined it finished.
  func gcWaitWorkers() {
    let ws = pointee.workers
    let n = UInt32(truncatingIfNeeded: atomicOr64(&ws.pointee.join, 1 << 31) & 0xffff)
    while true {
      let d = atomicLoad32(&ws.pointee.done)
      if d >= n { return }
      goalloc_futex_wait(&ws.pointee.done, d)
    }
  }

  /// Between cycles: once the main thread has left, the helpers end (see the file comment).
  /// Called by a helper whose park timed out; does nothing while a cycle runs.
  func gcRetireWorkersIfOrphaned() {
    if goalloc_main_thread_exited() == 0 { return }
    guard atomicCAS32(&pointee.lock, 0, 1) else { return }  // a cycle runs: not now
    let ws = pointee.workers
    _ = atomicAdd32(&ws.pointee.crew, 1)
    ws.pointee.started = 0
    _ = atomicAdd32(&ws.pointee.gen, 1)
    goalloc_futex_wake(&ws.pointee.gen, Int32.max)
    lockRelease(&pointee.lock)
  }

  /// In a fork child: the helpers are not there.
  func gcWorkersAfterFork() {
    let ws = pointee.workers
    _ = atomicAdd32(&ws.pointee.crew, 1)
    ws.pointee.started = 0
    atomicStore32(&ws.pointee.done, 0)
  }
}

/// A helper thread: parks until a round of marking, marks, parks again.
func gcWorkerMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  goalloc_tls_state_set(1)  // no cache: never registered, stopped or scanned
  let bits = UInt(bitPattern: arg)
  let id = Int(bits & 0xff), crew = UInt32(truncatingIfNeeded: bits >> 8)
  guard let gc = UnsafeMutablePointer<GCState>(bitPattern: atomicLoadUInt(&gcStateWord)) else { return nil }
  let ws = gc.pointee.workers
  var seen = ws.pointee.startGen
  while true {
    let g = atomicLoad32(&ws.pointee.gen)
    if atomicLoad32(&ws.pointee.crew) != crew { return nil }
    if g == seen {
      if goalloc_gc_park(&ws.pointee.gen, g, GCWorkers.parkNanos) != 0 { gc.gcRetireWorkersIfOrphaned() }
      continue
    }
    seen = g
    if UInt32(id) > ws.pointee.active { continue }
    // Join the round unless it is closed (or already another one).
    var joined = false
    while true {
      let j = atomicLoad64(&ws.pointee.join)
      if UInt32(truncatingIfNeeded: j >> 32) != g || j & (1 << 31) != 0 { break }
      if atomicCAS64(&ws.pointee.join, j, j &+ 1) { joined = true; break }
    }
    if !joined { continue }
    let cpu0 = goalloc_thread_cputime()
    gc.gcHelperMark(id)
    let cpu1 = goalloc_thread_cputime()
    if cpu1 > cpu0 { _ = atomicAdd64(&ws.pointee.cpuNs, cpu1 - cpu0) }
    _ = atomicAdd32(&ws.pointee.done, 1)
    goalloc_futex_wake(&ws.pointee.done, 1)
  }
}
