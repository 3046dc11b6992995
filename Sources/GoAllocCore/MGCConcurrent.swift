// MGCConcurrent: the concurrent cycle (GOALLOC_DEBUG=gcconc=1; Go's gcStart / gcBgMarkWorker /
// gcMarkDone / gcMarkTermination), mostly-concurrent in bdwgc's sense: no write barrier, the
// pages the program wrote while the mark ran are found afterwards (MGCDirty) and rescanned; or,
// with gcdirty=barrier, the program's explicit write barrier instead (MGCBarrier; below).
//
// One cycle, under the collector's lock (gcCollect):
//   0. world running: sweep termination (as stage 1), then the dirty-page period starts: the
//      heap's ranges are write-protected for tracking (MGCDirty.gcDirtyBegin, time T0);
//   1. stop 1 (short): every lock taken, the world stopped; phase = mark; every span a GC cache
//      holds gets its *markFrom* (its freeindex now); the roots are scanned (the stopping
//      thread's stack, images' writable segments, added roots, malloc scan spans) into the
//      mark's queues; the helpers are woken; the world restarts and the locks are released;
//   2. concurrent mark: every other thread's stack is scanned with only that thread stopped
//      (gcScanStacksOneByOne); the collecting thread and the helpers (MGCWorkers) drain the
//      queues while the program runs; the program's threads do not wait for the cycle, they pay for
//      their allocation with mark assists (MGCAssist) and wait only at the heap goal;
//   3. stop 2, mark termination: phase = markTermination; allocate-black is settled (below);
//      every thread's stack is scanned again, and the images' segments and added roots; then
//      every marked object of a collected scan span, and every live slot of a malloc scan span,
//      on a page written since T0 is scanned again (MGCDirty; gcdirty=barrier: every live slot
//      of the malloc scan spans, no collected span, below); the queues drain (with the
//      overflow recovery); GOALLOC_DEBUG=gccheckmark=1 verifies (MGCCheckmark); the specials
//      (MGCSpecialsMark); the flip and the pacer as stage 1 (MGC.gcReclaimAndStart). Sweeping
//      then runs beside the program as in stage 1.
//
// Why this is enough (the mostly-concurrent argument; Boehm, Demers, Shenker 1991). Take an
// object X reachable when stop 2 begins, through a chain root -> O1 -> ... -> X, and suppose X
// ends the drain unmarked. Every root is scanned in stop 2 (stacks and registers whole; images
// and added roots whole), so some Ok is marked and Ok+1 is not. Had Ok been scanned in stop 2,
// Ok+1 would be marked; so Ok was scanned only during the concurrent mark, at some time t > T0,
// or never (allocated black). If its word pointing to Ok+1 was written after t, the page was
// written after T0 and stop 2 scanned Ok again; if not, the scan at t read that pointer and
// marked Ok+1. An object allocated black is never scanned unless its page was written after T0:
// a scan object is zeroed when handed out (a write), or its span's memory was never used (zero);
// either way a page not written since T0 holds no pointer in it. So every reachable object is
// marked: objects unreachable at stop 1 but resurrected by a thread storing a pointer it read
// earlier are covered by the same argument (the store is to a stack, rescanned whole, or to a
// page, which is then written). The dirty-page mechanisms (uffd write-protect, soft-dirty, or
// none: every page written) are MGCDirty's.
//
// GOALLOC_DEBUG=gcdirty=barrier: no page is tracked; the program promises that every pointer
// store into a collected object goes through goalloc_gc_write_barrier (MGCBarrier), which from
// stop 1 to stop 2 greys the stored value (and the overwritten one, as Go's hybrid barrier does;
// the argument needs only the first). Stop 2 rescans the roots without barriers whole (stacks
// and registers, images, added roots, every live slot of the malloc scan spans) and no collected
// span. The argument as above: an Ok that is a root or a malloc slot was rescanned in stop 2, so
// Ok is a collected object, scanned at some t during the mark or allocated black (never
// scanned; zeroed when handed out, so every word of it was stored after stop 1). Its word
// pointing to Ok+1 was stored before t, and the scan at t read it, or after t (for a black
// object: at all), through the barrier while it greyed: Ok+1 was marked then (or found marked),
// before stop 2 (a shade holds the barrier's lock, which stop 2 takes before stopping anyone). A barrier that loaded its flag before stop 1 and stores after it stores a value its
// thread held at stop 1: a root, greyed by stop 1. goalloc_gc_realloc shades what it copies. A
// store that bypasses the barrier voids this (gccheckmark=1 shows it: GCTests).
//
// Allocate-black without a single instruction on the allocation fast path: an object allocated
// during the mark is a slot of a span some GC cache held then, and a cache only hands out slots
// in increasing index order from freeindex (a slot below freeindex is allocated; above it, the
// allocBits say). So each cached span carries a *markFrom* (GCCache.from / handoffFrom): its
// freeindex when stop 1 ran, or when the cache took it during the mark (gcTakeSpan records it,
// under the central lock, so before or after stop 1 exactly). The slots of [markFrom,
// freeindex) not in allocBits are the ones handed out during the mark; they get their mark bit
// (and their scanned bit: they need no scan) when the cache lets the span go during the mark
// (gcUncacheSpan, under the central lock) or in stop 2 for the spans still held (gcBlackenCaches)
// - always before the dirty-page rescan, which must see them marked. A large object allocated
// during the mark is marked at its allocation (a slow path). Nothing is ever swept during the
// mark (sweep termination left nothing unswept, and the flip comes after), so a slot cannot be
// freed and handed out again within one mark, and freeindex only grows.
//
// Memory a marker may be reading is never freed during the mark: a GC cache's empty span goes
// onto its partial list instead of the page heap, and the explicit free of a large collected
// object only sets its free bit (the sweep after the flip frees it; counted as freed at once).
// Explicit frees of small objects set freeBits as ever: a marker skips such an object, and the
// sweep frees it even if it was marked (black or not).
//
// Invariants: phase changes only with every central lock held (both stops); spans cached
// during the mark have their markFrom set before any slot of theirs is handed out; black marks
// are set with atomic ORs (markers set mark bits concurrently).
import CGoAllocShim

/// goalloc_gc_with_registers' callback in the concurrent mode.
func gcConcCycleEntry(_ arg: UnsafeMutableRawPointer?, _ sp: UInt) {
  guard let arg, let h = globalHeap() else { return }
  let gc = arg.assumingMemoryBound(to: GCState.self)
  gcConcCycle(h, gc, callerSP: gc.gcStackScanStart(sp))
}

func gcConcCycle(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, callerSP: UInt) {
  gcConcStart(h, gc, callerSP: callerSP)
  gcConcFinish(h, gc, callerSP: callerSP)
}

/// goalloc_gc_with_registers' callback for a cycle handed to the background thread: stop 1
/// on the calling thread, then the hand-off.
func gcConcStartEntry(_ arg: UnsafeMutableRawPointer?, _ sp: UInt) {
  guard let arg, let h = globalHeap() else { return }
  let gc = arg.assumingMemoryBound(to: GCState.self)
  gcConcStart(h, gc, callerSP: sp)
  atomicStore32(&gc.pointee.bgWord, 1)
  goalloc_futex_wake(&gc.pointee.bgWord, 1)
}

/// The dirty-page period's start and stop 1 (the caller's stack scanned from callerSP).
func gcConcStart(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, callerSP: UInt) {
  let cpu0 = goalloc_thread_cputime()
  gc.gcDirtyBegin(h)  // T0: writes from here on are seen
  // Stop 1: roots.
  let t0 = goalloc_nanotime()
  let me = goalloc_gettid()
  gc.pointee.lastThreads = Int(gcStopTheWorld(h, me)) + 1
  gc.gcSweepAllLocked(h)  // (normally nothing: the caller swept before the stop)
  atomicStore32(&gc.pointee.phase, GCPhase.mark.rawValue)
  atomicStore64(&gc.pointee.blackBytes, 0)
  gcSetMarkFrom(h, gc)
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_MARK_START))
  // Go's 25 % background utilisation: the dedicated workers, and this thread as the fractional
  // one if there is one; or idle workers on the CPUs the program leaves free (gcMarkWorkers;
  // mark termination widens to every worker: gcMarkTermination).
  let split = gcMarkWorkers(procs: gc.pointee.markWorkers, threads: gc.pointee.lastThreads)
  gc.pointee.concFraction = split.fraction
  gc.pointee.concIdle = (split.idle, split.workers)
  gc.pointee.concStarter = me
  gc.gcMarkStart(h, callerSP: callerSP, me: me, workers: split.workers, concurrent: true, otherStacks: false)
  gc.gcAssistsOpen()
  gc.gcBarrierOpen()
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_PRE_START_WORLD))
  goalloc_gc_start_world()
  h.unlockAll()
  let t1 = goalloc_nanotime()
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_POST_START_WORLD))
  gc.gcRecordPause(t1 - t0)
  gc.pointee.concT = (t0, t1)
  let cpu1 = goalloc_thread_cputime()
  gc.pointee.concCPU = cpu1 > cpu0 ? cpu1 - cpu0 : 0
}

/// The concurrent mark and mark termination, on the thread that ran stop 1 (callerSP: its
/// stack's scan starts there) or on the background thread (which has no stack to scan).
func gcConcFinish(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, callerSP: UInt) {
  let cpu0 = goalloc_thread_cputime()
  let me = goalloc_gettid()
  let (t0, t1) = gc.pointee.concT
  // Concurrent mark: the other threads' stacks, each thread stopped alone; this thread and the
  // helpers, beside the program; then the pages written meanwhile (MGCDirty's preclean), so
  // that stop 2 has only the last ones to rescan.
  gc.gcScanStacksOneByOne(h, skip: gc.pointee.concStarter)
  gc.gcMarkConcurrent()
  gc.gcPreclean(h)
  gc.gcAssistsClose()  // (assists pay through the preclean's rounds too)
  let cpuMid = goalloc_thread_cputime()
  let helpersCPU = atomicLoad64(&gc.pointee.workers.pointee.cpuNs)
  // Stop 2: mark termination.
  let t2 = goalloc_nanotime()
  _ = gcStopTheWorld(h, me, first: &gc.pointee.work.pointee.wbLock)  // (no shade half-done)
  gc.gcBarrierClose()
  atomicStore32(&gc.pointee.phase, GCPhase.markTermination.rawValue)
  gcBlackenCaches(h, gc)
  gc.gcMarkTermination(h, callerSP: callerSP, me: me)
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_MARK_END))
  // The pacer's runway: what the program allocated while this cycle marked, and an eighth more;
  // if an allocation stalled at the goal that growth was cut short: twice the last runway.
  let live = atomicLoad64(&gc.pointee.heapLive), start = gc.pointee.lastHeapStart
  let grown = live > start ? live - start : 0
  let stalls = atomicLoad64(&gc.pointee.goalStalls)
  if stalls != gc.pointee.stallsSeen && gc.pointee.runway != UInt64.max {
    gc.pointee.runway = Swift.min(Swift.max(grown, gc.pointee.runway) &* 2, UInt64.max / 4)
  } else {
    gc.pointee.runway = grown &+ grown / 8
  }
  gc.pointee.stallsSeen = stalls
  gcReclaimAndStart(h, gc)
  let t3 = goalloc_nanotime()
  gc.gcDirtyEnd(h)  // (after the stop: a write before it is only recorded, uselessly)
  goalloc_gc_event(Int32(GOALLOC_GC_EVENT_POST_START_WORLD))
  gc.pointee.lastClock = (t1 - t0, t2 - t1, t3 - t2)
  gc.pointee.lastPauses = (t1 - t0, t3 - t2)
  let cpu1 = goalloc_thread_cputime()
  let helpersAll = atomicExchange64(&gc.pointee.workers.pointee.cpuNs, 0)
  gc.pointee.lastCPU = gc.pointee.concCPU &+ (cpu1 > cpu0 ? cpu1 - cpu0 : 0) &+ helpersAll
  // Go's split: stop 1, assists, background workers (this thread and the helpers), idle
  // workers (their share of the workers' time: they ran as the others did), stop 2 (this
  // thread and the helpers in it).
  let marking = (cpuMid > cpu0 ? cpuMid - cpu0 : 0) &+ helpersCPU
  let (idle, workers) = gc.pointee.concIdle
  let idleCPU = workers > 0 ? marking / UInt64(workers) &* UInt64(idle) : 0
  gc.pointee.lastCPUSplit = (gc.pointee.concCPU, gc.pointee.lastAssist.ns, marking - idleCPU, idleCPU,
                             (cpu1 > cpuMid ? cpu1 - cpuMid : 0) &+ (helpersAll &- helpersCPU))
  gc.gcRecordPause(t3 - t2)
  gc.pointee.lastCyclePauseNs = (t1 - t0) + (t3 - t2)
  gc.gcLimiterUpdate(concurrent: true)
  gc.gcCycleDone()
}

// MARK: the background collector thread

extension UnsafeMutablePointer where Pointee == GCState {
  /// The background thread, started once (collector's lock held, no allocator lock: creating a
  /// thread may allocate). False when it cannot be had (the cycle then runs on the caller).
  func gcBackgroundStart() -> Bool {
    if pointee.bgStarted { return true }
    if pointee.bgFailed { return false }
    let crew = atomicLoad32(&pointee.bgCrew)
    if goalloc_start_thread(gcBackgroundMain, UnsafeMutableRawPointer(bitPattern: UInt(crew) << 8 | 1)) == 0 {
      pointee.bgFailed = true
      return false
    }
    pointee.bgStarted = true
    return true
  }
}

/// The background collector (Go's dedicated background mark worker and the gcMarkDone /
/// gcMarkTermination it runs): parked until a cycle's stop 1 hands it the rest, which it runs
/// with the collector's lock (taken by the thread that started the cycle) and then releases.
/// It keeps no cache (never registered, stopped or scanned; it allocates nothing). When the
/// main thread has left with pthread_exit it ends between cycles, as the mark helpers do.
func gcBackgroundMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  goalloc_tls_state_set(1)  // no cache
  let crew = UInt32(truncatingIfNeeded: UInt(bitPattern: arg) >> 8)
  guard let h = globalHeap(), let gc = UnsafeMutablePointer<GCState>(bitPattern: atomicLoadUInt(&gcStateWord)) else { return nil }
  while true {
    if atomicLoad32(&gc.pointee.bgCrew) != crew { return nil }
    if atomicLoad32(&gc.pointee.bgWord) == 0 {
      if goalloc_gc_park(&gc.pointee.bgWord, 0, GCWorkers.parkNanos) != 0 && goalloc_main_thread_exited() != 0
        && atomicLoad32(&gc.pointee.bgWord) == 0 && atomicCAS32(&gc.pointee.lock, 0, 1) {
        _ = atomicAdd32(&gc.pointee.bgCrew, 1)
        gc.pointee.bgStarted = false
        lockRelease(&gc.pointee.lock)
        return nil
      }
      continue
    }
    gcConcFinish(h, gc, callerSP: 0)
    gcCollectTail(h, gc, forced: false)
    atomicStore32(&gc.pointee.poolPending, 1)
    atomicStore32(&gc.pointee.bgWord, 0)
    lockRelease(&gc.pointee.lock)
  }
}

/// Stop 1: every span a GC cache holds (slots and handoff word) gets markFrom = its freeindex.
/// World stopped, every lock held.
func gcSetMarkFrom(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>) {
  var held = GCHeldSpans(h)
  while let (s, from) = held.next() { from.pointee = s.pointee.freeindex }
}

/// Stop 2: the slots the GC caches handed out during the mark from the spans they still hold
/// become black. World stopped, every lock held (so a handoff span is on no list yet).
func gcBlackenCaches(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>) {
  var held = GCHeldSpans(h)
  while let (s, from) = held.next() { gc.gcBlacken(s, from: from.pointee) }
}

/// An explicit free of large collected object s (at a) during a concurrent mark: its free bit,
/// applied by the sweep after the flip (a marker may be reading the span now). False when no
/// mark is running (the caller frees it now). Counted as freed at once.
func gcFreeLargeDuringMark(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, _ s: SpanPtr,
                           _ a: UInt, op: StaticString) -> Bool {
  let central = gc.gcCentral(h, Int(s.pointee.spanclass))
  lockAcquire(&central.pointee.lock)
  if atomicLoad32(&gc.pointee.phase) != GCPhase.mark.rawValue {
    lockRelease(&central.pointee.lock)
    return false
  }
  let ok = atomicLoad32(&s.pointee.state) == spanInUse && atomicOr64(s.freeWord(0), 1) & 1 == 0
  lockRelease(&central.pointee.lock)
  if !ok {
    h.badFree(op, "double free detected", a)
    return true
  }
  if atomicLoad32(&s.pointee.specials) != 0 { gcSpecialsObjectFreed(h, s, a, s.pointee.elemsize) }
  let bytes = UInt64(s.pointee.elemsize)
  atomicAdd64(&gc.pointee.frees, 1)
  atomicAdd64(&gc.pointee.freedBytes, bytes)
  let live = atomicLoad64(&gc.pointee.heapLive)
  atomicStore64(&gc.pointee.heapLive, live > bytes ? live - bytes : 0)
  return true
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Stacks one by one (Go scans each goroutine's stack with only that goroutine stopped): after
  /// stop 1, the world running, every registered thread but `skip` (whose stack stop 1 scanned)
  /// is stopped alone, just long enough to copy its stack from the sp its stop handler saved
  /// (every register lies above it) and its static TLS; the copy is scanned once the thread runs
  /// again (a stopped thread may hold the mark queue's lock). The caches lock keeps the thread
  /// list still meanwhile. Stop 2 rescans every stack whole, so this finds the stacks' work
  /// early rather than in a pause, and a thread that starts or ends meanwhile needs nothing here.
  func gcScanStacksOneByOne(_ h: UnsafeMutablePointer<MHeap>, skip: Int) {
    let m = marker0
    let me = goalloc_gettid()
    let list = h.pointee.caches
    lockAcquire(&list.pointee.lock)
    var it = list.pointee.head
    while let raw = it {
      let c = MCache(raw)
      it = c.link.pointee.next
      let tid = c.header.pointee.tid
      guard let t = c.header.pointee.gcThread?.assumingMemoryBound(to: goalloc_gc_thread.self), tid != skip, tid != me else { continue }
      var copied = 0
      for _ in 0..<2 {  // (a second try after the copy buffer grew)
        goalloc_gc_begin_stop()
        let sent = goalloc_gc_signal_thread(tid)
        if sent != 0 { goalloc_gc_wait_stopped(sent) }
        if sent == 0 || atomicLoad32(&t.pointee.stopped) != goalloc_gc_epoch() {
          goalloc_gc_start_world()
          break  // (gone)
        }
        let r = t.rootRanges(from: atomicLoadRelaxedUInt(&t.pointee.sp))
        let stack = Int(r.stack.1 - r.stack.0), tls = Int(r.tls.1 - r.tls.0)
        if stack + tls > pointee.stackCopyBytes {
          goalloc_gc_start_world()
          if !growStackCopy(stack + tls) { break }  // (stop 2 finds it)
          continue
        }
        let buf = pointee.stackCopy!
        if stack > 0 { buf.copyMemory(from: UnsafeRawPointer(bitPattern: r.stack.0)!, byteCount: stack) }
        if tls > 0 { (buf + stack).copyMemory(from: UnsafeRawPointer(bitPattern: r.tls.0)!, byteCount: tls) }
        goalloc_gc_start_world()
        copied = stack + tls
        break
      }
      let lo = UInt(bitPattern: pointee.stackCopy)
      pointee.stackBytes &+= m.scanRoot((lo, lo &+ UInt(copied)))
    }
    lockRelease(&list.pointee.lock)
  }

  /// The stack copy's buffer, at least `bytes` (64 KiB steps). False when it cannot be had.
  private func growStackCopy(_ bytes: Int) -> Bool {
    let n = roundUp(bytes, 64 << 10)
    guard let p = sysMap(n) else { return false }
    if let old = pointee.stackCopy { goalloc_sys_unmap(old, pointee.stackCopyBytes) }
    pointee.sys &+= UInt64(n) &- UInt64(pointee.stackCopyBytes)
    pointee.stackCopy = p
    pointee.stackCopyBytes = n
    return true
  }

  /// The concurrent mark: drains until every worker is idle (the overflow recovery waits for
  /// mark termination). The world runs.
  func gcMarkConcurrent() {
    let w = pointee.work
    if pointee.concFraction > 0 {
      marker0.markLoopFractional(pointee.concFraction)
    } else {
      marker0.markLoop(startIdle: false)
    }
    if w.pointee.nworkers > 1 { gcWaitWorkers() }
  }

  /// The concurrent mark's last round: the pages written so far are rescanned (and tracked
  /// again: MGCDirty.gcPreclean), then every worker drains once more.
  /// With gcdirty=barrier: what the barrier queued after the workers went idle, drained once
  /// more here (rather than in stop 2).
  /// The preclean runs in rounds, each one's drain writing fewer pages than the last, until a
  /// round finds under `precleanEnough` pages written (or after `precleanRounds`).
  func gcPreclean(_ h: UnsafeMutablePointer<MHeap>) {
    if barrierMode {
      if atomicLoad64(&pointee.work.pointee.globalCount) != 0 { gcDrainRound() }
      return
    }
    if !pointee.preclean || pointee.concBroken { return }
    // A round is about as long as the last one: none starts that would take the heap to its
    // goal meanwhile (an allocation there waits for the whole cycle: a longer wait than the
    // written pages the round would take out of stop 2).
    let goal = atomicLoad64(&pointee.heapGoal)
    var grown: UInt64 = 0
    for _ in 0..<GCState.precleanRounds {
      let live0 = atomicLoad64(&pointee.heapLive)
      if live0 &+ grown >= goal { return }
      let pages = gcPrecleanWritten(h)
      if pages < 0 { return }
      gcDrainRound()
      let live1 = atomicLoad64(&pointee.heapLive)
      grown = live1 > live0 ? live1 - live0 : 0
      if pages < GCState.precleanEnough { return }
    }
  }

  /// One more round of every worker draining (world running, the helpers parked).
  func gcDrainRound() {
    let w = pointee.work
    let n = w.pointee.nworkers
    atomicStore64(&w.pointee.nwait, UInt64(n - 1))
    if n > 1 { gcWakeWorkers(n) }
    marker0.markLoop(startIdle: false)
    if n > 1 { gcWaitWorkers() }
  }

  /// Stop 2's mark: roots again, the pages written since T0, then a full drain. World stopped,
  /// every lock held, the helpers parked.
  func gcMarkTermination(_ h: UnsafeMutablePointer<MHeap>, callerSP: UInt, me: Int) {
    gcSetHeapBounds(h)  // (the heap may have grown: new arenas)
    let w = pointee.work
    w.widen(h, to: pointee.markWorkers)
    for i in 0..<w.pointee.nworkers {
      (w.pointee.markers + i).pointee.heapLo = w.pointee.heapLo
      (w.pointee.markers + i).pointee.heapHi = w.pointee.heapHi
    }
    let stacks = pointee.stackBytes, globals = pointee.globalsBytes
    // gcdirty=barrier: the roots without barriers whole, malloc scan spans included; collected
    // spans not at all (the barrier greyed what was stored into them).
    gcScanRoots(h, callerSP: callerSP, me: me, mallocSpans: barrierMode)
    pointee.stackBytes = stacks
    pointee.globalsBytes = globals
    if pointee.concBroken || barrierMode {
      pointee.lastDirtyPages = 0
      pointee.lastDirtyBytes = 0
    } else {
      gcRescanDirty(h)
    }
    finishMark(h, helpersAwake: false)
    w.pointee.markedBytes &+= atomicLoad64(&pointee.blackBytes)
    if pointee.checkmark { gcCheckmark(h, callerSP: callerSP, me: me) }
    gcMarkSpecials(h)  // finalizers, cleanups, weak handles (MGCSpecialsMark.swift)
  }
}
