// Process: the life of the process-wide heap and of each thread's cache (Go's mallocinit and
// the mcache half of procresize). See Malloc.swift for an overview of the allocator.
//
// The heap is created by the first allocation of any thread (under `globalInitLock`) and lives
// as long as the process. A thread's MCache is created by its first allocation and reached
// through one TLS word: `goalloc_tls_get` (the fast paths) or, while tracing or profiling,
// `goalloc_tls_slow_get` (so every call takes the instrumented slow path). A pthread key's
// destructor hands the cache back at thread exit; a thread that allocates after that gets a
// short-lived cache per call. Fork: every lock is taken before and released after, and the
// child takes back the LargeBins of every cache, then unlinks the caches of threads it does not
// have (MHeap.afterForkChild).
//
// Invariants: at most one heap per process; a thread's TLS words name its own cache or nothing.
import CGoAllocShim

nonisolated(unsafe) var globalInitLock: LockWord = 0

/// The process-wide heap, created on first use; nil only if the OS refuses memory.
@inline(__always) public func globalHeap() -> UnsafeMutablePointer<MHeap>? {
  if let h = goalloc_global_heap_get() { return h.assumingMemoryBound(to: MHeap.self) }
  return initGlobalHeap()
}

@inline(never)
func initGlobalHeap() -> UnsafeMutablePointer<MHeap>? {
  lockAcquire(&globalInitLock)
  if let h = goalloc_global_heap_get() {
    lockRelease(&globalInitLock)
    return h.assumingMemoryBound(to: MHeap.self)
  }
  let h = MHeap.create()
  if let h {
    h.debugFlags = goalloc_debug_flags_from_env()
    applySecureMode(h)
    h.pointee.periodicCheck = periodicHeapCheck
    h.pointee.scavenger.pointee.background = true
    goalloc_global_heap_set(UnsafeMutableRawPointer(h))
  }
  lockRelease(&globalInitLock)
  if let h {
    goalloc_register_atfork(forkPrepare, forkParent, forkChild)
    goalloc_set_exit_hook(exitHook)
    h.configureInstrumentation()
  }
  return h
}

/// Re-reads GOALLOC_DEBUG (the environment may not exist yet at the first malloc).
public func refreshDebugFlags() {
  guard let h = globalHeap() else { return }
  let f = goalloc_debug_flags_from_env()
  if f != 0 { h.debugFlags = f }
  applySecureMode(h)
}

/// GOALLOC_SECURE=1 (read with the debug flags): the heap turns secure once, for good; caches
/// created from then on start secure, and the calling thread's cache turns secure now. (The
/// environment is read at the heap's creation or, when it was not readable yet, by the
/// library's constructor, before the program has other threads.)
func applySecureMode(_ h: UnsafeMutablePointer<MHeap>) {
  if h.debugFlags & UInt32(GOALLOC_SECURE_MODE) == 0 || atomicLoad32(&h.pointee.secure) != 0 { return }
  atomicStore32(&h.pointee.secure, 1)
  if let raw = existingThreadCache(), MCache(raw).heap == h { MCache(raw).becomeSecure() }
  h.takeBackBins()  // binned large spans have no guard page
}

/// The calling thread's cache, fast-path or instrumented (`goalloc_tls_slow_get`), if it has one.
@inline(__always) func existingThreadCache() -> UnsafeMutableRawPointer? {
  goalloc_tls_get() ?? goalloc_tls_slow_get()
}

/// This thread's cache, created on first use; nil when out of memory.
@inline(__always) @usableFromInline func currentCache() -> MCache? {
  if let raw = existingThreadCache() { return MCache(raw) }
  return createThreadCache()
}

@inline(never)
func createThreadCache() -> MCache? {
  guard let h = globalHeap(), let c = MCache.create(h) else { return nil }
  if h.instrumented { goalloc_tls_slow_set(c.raw) } else { goalloc_tls_set(c.raw) }
  c.header.pointee.gcThread = UnsafeMutableRawPointer(goalloc_gc_thread_self())  // a GC root (MGC)
  gcThreadStarted()
  if goalloc_tls_state_get() == 0 && goalloc_thread_key_init(threadExit) != 0 {
    goalloc_thread_key_set(c.raw)
  }
  return c
}

/// GOALLOC_DEBUG=check=1: the heap and the calling thread's own cache (`raw`), or abort.
func periodicHeapCheck(_ raw: UnsafeMutableRawPointer) {
  let c = MCache(raw)
  if !c.heap.checkHeapAndOwnCacheAndReport() { goalloc_abort() }
}

/// pthread key destructor: the thread is exiting; give its spans and counters back.
func threadExit(_ raw: UnsafeMutableRawPointer?) {
  guard let raw, goalloc_tls_get() == raw || goalloc_tls_slow_get() == raw else { return }
  goalloc_tls_set(nil)
  goalloc_tls_slow_set(nil)
  goalloc_tls_state_set(1)  // later mallocs on this thread use a short-lived cache
  reportPoolEvent(MCache(raw).heap, PoolEvent.cacheGone, raw)
  gcReleaseCache(MCache(raw))
  MCache(raw).destroy()
}

/// Flushes and frees the calling thread's cache now (tests; threads about to exit).
public func releaseThreadCache() {
  guard let raw = existingThreadCache() else { return }
  reportPoolEvent(MCache(raw).heap, PoolEvent.cacheGone, raw)
  gcReleaseCache(MCache(raw))
  goalloc_tls_set(nil)
  goalloc_tls_slow_set(nil)
  MCache(raw).destroy()
}

/// At exit (or library unload): GOALLOC_DEBUG=stats=1 prints MemStats to stderr, as one block
/// headed by the process's pid and command line.
func exitHook() {
  refreshDebugFlags()
  guard let h = globalHeap() else { return }
  h.finishInstrumentation()
  if h.debugFlags & UInt32(GOALLOC_DEBUG_CHECK) != 0 && !h.checkHeapAndOwnCacheAndReport() { goalloc_abort() }
  if h.debugFlags & UInt32(GOALLOC_DEBUG_STATS) != 0 { MemStats.read(h).write(to: goalloc_stats_fd(), atExit: true) }
}

/// Library constructor: the environment is readable now (the first mallocs may predate it).
public func loadHook() {
  // libc is up: a heap that grew past scavengerStartPages before this point gets its scavenger.
  if let h = globalHeap(), atomicLoad32(&h.pointee.scavenger.pointee.wanted) != 0 { h.startScavengerIfNeeded() }
  refreshDebugFlags()
  if let h = globalHeap(), h.debugFlags & UInt32(GOALLOC_DEBUG_STATS) != 0 { goalloc_stats_fd_init() }
  globalHeap()?.configureInstrumentation()
}

// The collector's lock first (a cycle holds it, then every other lock: MGC.swift), then the
// pools' (they hold none of the heap's while they take theirs).
func forkPrepare() {
  guard let h = globalHeap() else { return }
  gcForkPrepare(h)
  reportPoolEvent(h, PoolEvent.forkPrepare)
  h.lockAll()
  goalloc_unwind_fork_prepare()  // (last: an unwind takes no other lock of ours)
}
func forkParent() {
  guard let h = globalHeap() else { return }
  goalloc_unwind_fork_parent()
  h.unlockAll()
  reportPoolEvent(h, PoolEvent.forkParent)
  gcForkParent(h)
}
// The child keeps the forking thread's cache, fast-path or instrumented.
func forkChild() {
  guard let h = globalHeap() else { return }
  goalloc_unwind_fork_child()
  h.afterForkChild(keeping: existingThreadCache())
  reportPoolEvent(h, PoolEvent.forkChild)
  gcForkChild(h)
}

extension UnsafeMutablePointer where Pointee == MHeap {
  // MARK: fork

  /// Takes every allocator lock (pthread_atfork prepare).
  func lockAll() {
    goalloc_trace_lock()
    for i in 0..<SpanClass.centralCount { lockAcquire(&pointee.centrals[i].lock) }
    lockAcquire(&pointee.scavenger.pointee.lock)
    lockAcquire(&pointee.caches.pointee.lock)
    lockAcquire(&pointee.lock)
    lockAcquire(&heapAddressSpace.lock)  // (taken under the heap lock when it grows)
  }
  func unlockAll() {
    goalloc_trace_unlock()
    lockRelease(&heapAddressSpace.lock)
    lockRelease(&pointee.lock)
    lockRelease(&pointee.caches.pointee.lock)
    lockRelease(&pointee.scavenger.pointee.lock)
    for i in 0..<SpanClass.centralCount { lockRelease(&pointee.centrals[i].lock) }
  }
  /// In the child: locks are free again. The caches of threads that do not exist here are
  /// unlinked (their counters flushed) but their spans are left alone: such a thread may have
  /// been halfway through the lock-free fast path when fork copied it, so its spans cannot be
  /// trusted. They stay "cached" forever in the child (a bounded leak, like glibc's arenas).
  /// (Their GC caches' spans go to their full lists: a sweep rebuilds those from the marks, and
  /// every collected span must be swept before each mark: gcForkChildAdopt.)
  /// Their LargeBins go back to the page heap first: a slot is either a binned span or empty at
  /// every instant (LargeBins), so taking them is safe (a span halfway into or out of a slot
  /// stays lost).
  func afterForkChild(keeping current: UnsafeMutableRawPointer?) {
    goalloc_trace_reset_lock()
    lockReset(&heapAddressSpace.lock)
    lockReset(&pointee.lock)
    lockReset(&pointee.caches.pointee.lock)
    lockReset(&pointee.scavenger.pointee.lock)
    if atomicLoad32(&pointee.scavenger.pointee.started) == 1 {
      atomicStore32(&pointee.scavenger.pointee.started, 0)  // no thread here: restart lazily
    }
    for i in 0..<SpanClass.centralCount { lockReset(&pointee.centrals[i].lock) }
    // A thread that does not exist here may have been inside a LargeBins take: its busy flag
    // would hold the thieves off for ever (what it took stays lost, as above).
    var c0 = pointee.caches.pointee.head
    while let raw = c0 {
      MCache(raw).binWords[LargeBins.busy] = 0
      c0 = MCache(raw).link.pointee.next
    }
    takeBackBins()
    var it = pointee.caches.pointee.head
    while let raw = it {
      let c = MCache(raw)
      it = c.link.pointee.next
      if raw != current {
        gcForkChildAdopt(self, c)
        c.abandon()
      } else {
        // This thread's id here: the collector finds its own stack by it, and stops every
        // other cache's thread by it (with the parent's id this thread's stack went unscanned).
        c.header.pointee.tid = goalloc_gettid()
      }
    }
  }
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Starts the background scavenger once, when the environment is readable (libc is up).
  func startScavengerIfNeeded() {
    let sc = pointee.scavenger
    atomicStore32(&sc.pointee.wanted, 0)
    if !sc.pointee.background || atomicLoad32(&sc.pointee.started) != 0 { return }
    let flags = debugFlags & UInt32(GOALLOC_DEBUG_PARSED) != 0 ? debugFlags : goalloc_debug_flags_from_env()
    if flags & UInt32(GOALLOC_DEBUG_PARSED) == 0 { return }  // too early: try again later
    debugFlags = flags
    if flags & UInt32(GOALLOC_DEBUG_NO_SCAVENGER) != 0 {
      _ = atomicCAS32(&sc.pointee.started, 0, 2)
      return
    }
    guard atomicCAS32(&sc.pointee.started, 0, 1) else { return }
    lockAcquire(&sc.pointee.lock)
    // (A limit set through goalloc_gc_set_memory_limit before this stays, unless the environment sets one.)
    let e = goalloc_memlimit_from_env()
    if e != 0 { atomicStore64(&sc.pointee.memLimit, e) }
    lockRelease(&sc.pointee.lock)
    if goalloc_start_thread(scavengerMain, UnsafeMutableRawPointer(self)) == 0 {
      atomicStore32(&sc.pointee.started, 0)
    }
  }
}

/// The background scavenger thread of heap `arg`.
func scavengerMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  goalloc_tls_state_set(1)  // this thread keeps no cache of its own
  guard let h = arg?.assumingMemoryBound(to: MHeap.self) else { return nil }
  while atomicLoad32(&h.pointee.scavenger.pointee.started) == 1 {
    goalloc_sleep_ns(ScavengerState.tickNanos)
    // The program's threads are all gone (its main thread left by pthread_exit): leave too, or
    // this thread alone would keep the process alive.
    if goalloc_only_live_thread() != 0 {
      _ = atomicCAS32(&h.pointee.scavenger.pointee.started, 1, 0)
      return nil
    }
    // With a memory limit: how much of it the live objects fill (MemoryLimit needs it).
    if atomicLoad64(&h.pointee.scavenger.pointee.memLimit) != 0 { h.noteLiveBytes(MemStats.read(h).heapAlloc) }
    h.scavengerTick(reclaimSpans: reclaimParkedSpans)
    reportPoolEvent(h, PoolEvent.tick)  // pools rotate every few ticks without the GC mode
    gcBackgroundSweepTick(h)
  }
  return nil
}

/// The scavenger's way to reclaim parked empty spans (a plain function: no closure context).
func reclaimParkedSpans(_ h: UnsafeMutablePointer<MHeap>) -> Int { h.reclaim() }
