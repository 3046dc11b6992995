// Process: the life of the process-wide heap and of each thread's cache (Go's mallocinit and
// the mcache half of procresize). See Malloc.swift for an overview of the allocator.
//
// The heap is created by the first allocation of any thread (under `globalInitLock`) and lives
// as long as the process. A thread's MCache is created by its first allocation and reached
// through one TLS word: `goalloc_tls_get` (the fast paths) or, while tracing or profiling,
// `goalloc_tls_slow_get` (so every call takes the instrumented slow path). A pthread key's
// destructor hands the cache back at thread exit; a thread that allocates after that gets a
// short-lived cache per call. Fork: every lock is taken before and released after, and the
// child unlinks the caches of threads it does not have (MHeap.afterForkChild).
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
    h.pointee.scavenger.pointee.background = true
    goalloc_global_heap_set(UnsafeMutableRawPointer(h))
  }
  lockRelease(&globalInitLock)
  if let h {
    goalloc_register_atfork(forkPrepare, forkParent, forkChild)
    goalloc_set_exit_hook(exitHook)
    goalloc_set_load_hook(loadHook)
    h.configureInstrumentation()
  }
  return h
}

/// Re-reads GOALLOC_DEBUG (the environment may not exist yet at the first malloc).
public func refreshDebugFlags() {
  guard let h = globalHeap() else { return }
  let f = goalloc_debug_flags_from_env()
  if f != 0 { h.debugFlags = f }
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
  if goalloc_tls_state_get() == 0 && goalloc_thread_key_init(threadExit) != 0 {
    goalloc_thread_key_set(c.raw)
  }
  return c
}

/// pthread key destructor: the thread is exiting; give its spans and counters back.
func threadExit(_ raw: UnsafeMutableRawPointer?) {
  guard let raw, goalloc_tls_get() == raw || goalloc_tls_slow_get() == raw else { return }
  goalloc_tls_set(nil)
  goalloc_tls_slow_set(nil)
  goalloc_tls_state_set(1)  // later mallocs on this thread use a short-lived cache
  MCache(raw).destroy()
}

/// Flushes and frees the calling thread's cache now (tests; threads about to exit).
public func releaseThreadCache() {
  guard let raw = existingThreadCache() else { return }
  goalloc_tls_set(nil)
  goalloc_tls_slow_set(nil)
  MCache(raw).destroy()
}

/// At exit (or library unload): GOALLOC_DEBUG=stats=1 prints MemStats to stderr.
func exitHook() {
  refreshDebugFlags()
  guard let h = globalHeap() else { return }
  h.finishInstrumentation()
  if h.debugFlags & UInt32(GOALLOC_DEBUG_CHECK) != 0 && !h.checkHeapAndOwnCacheAndReport() { goalloc_abort() }
  if h.debugFlags & UInt32(GOALLOC_DEBUG_STATS) != 0 { MemStats.read(h).write(to: goalloc_stats_fd()) }
}

/// Library constructor: the environment is readable now (the first mallocs may predate it).
public func loadHook() {
  // libc is up: a heap that grew past scavengerStartPages before this point gets its scavenger.
  if let h = globalHeap(), atomicLoad32(&h.pointee.scavenger.pointee.wanted) != 0 { h.startScavengerIfNeeded() }
  refreshDebugFlags()
  if let h = globalHeap(), h.debugFlags & UInt32(GOALLOC_DEBUG_STATS) != 0 { goalloc_stats_fd_init() }
  globalHeap()?.configureInstrumentation()
}

func forkPrepare() { globalHeap()?.lockAll() }
func forkParent() { globalHeap()?.unlockAll() }
func forkChild() { globalHeap()?.afterForkChild(keeping: goalloc_tls_get()) }
