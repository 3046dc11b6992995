// Malloc: an overview of GoAlloc's allocator, and its entry points.
//
// GoAlloc is Go's runtime allocator (src/runtime/malloc.go and friends) rebuilt in Swift, with
// explicit free added. The data structures, from the thread outwards:
//
//   MCache    per thread, one current MSpan per span class and a FreeList per class (objects
//             the thread freed, most recent first); allocation pops the list or takes a slot
//             with one count-trailing-zeros on the span's allocCache. No locks, no atomic RMW.
//             Spans the thread's frees reclaimed wait on its ready list (oldest first).
//   MCentral  per span class; the partial spans (full ones float, owned by nobody).
//   MHeap     the page heap: 64 MiB arenas from mmap, an arena index mapping any address to
//             its span in O(1) (one load through the flat table of the first 64 GiB), and
//             PageAlloc, which finds runs of 8 KiB pages through a radix tree of summaries and
//             merges free neighbours.
//   MSpan     a run of pages cut into slots of one size class (or one large object).
//   FixAlloc / PersistentAlloc   metadata allocators over mmap (never malloc).
//
// Allocating an object of n bytes:
//   1. n <= 32 KiB: round up to a size class (one table load); span class = class<<1|noscan.
//      Noscan objects under 16 B (Go mode) go to the tiny allocator instead.
//   2. Pop the class's free list; else take the thread's span for that class, where
//      `nextFreeFast` pops a slot from allocCache.
//   3. Else `mallocRefill` -> `nextFree`: scan the span's allocBits; if exhausted, fold frees that
//      arrived for it; if still nothing, `refill` lets it float and takes the oldest ready span
//      with enough frees, else a span from the mcentral (a partial one, or a new one).
//   4. n > 32 KiB: a span of its own, straight from the mheap.
//   5. Zero the slot only if asked and the span may hold old data (`needzero`).
// Freeing p:
//   1. The span of p (one load in the flat table; else the arena index); "not ours", dead spans
//      and interior pointers are reported.
//   2. Small (16 B and up): slot = objIndex(p) by magic multiply; checked against the span's
//      high-water mark and the marks in the object's second word (FreeList), then pushed onto
//      the thread's free list. A full list sends half of itself to the bitmaps, as 8 B objects
//      and threads without a cache go at once: in a span this thread owns, a plain bit in its
//      own-free bitmap; else an atomic OR into the free bitmap (an already-set bit is a double
//      free) and one count pending; the first free into a floating span claims it. The owner
//      folds freed bits into allocBits when its allocCache runs dry, as Go's sweeper turns mark
//      bits into alloc bits.
//   3. Large: the span goes back to the mheap and its pages merge with free neighbours.
//
// Two alignment modes share one heap: Go mode (Go's classes as they are: 18 B -> 24 B,
// 8-aligned) for the Swift API and the GC mode, and malloc mode (every request >= 16 B is
// 16-aligned: 17..24 B -> 32 B; no tiny allocator) for the C ABI.
import CGoAllocShim

// MARK: the global heap and this thread's cache

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

/// This thread's cache, created on first use; nil when out of memory.
@inline(__always) @usableFromInline func currentCache() -> MCache? {
  if let raw = goalloc_tls_get() { return MCache(raw) }
  if let raw = goalloc_tls_slow_get() { return MCache(raw) }
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
  guard let raw = goalloc_tls_get() ?? goalloc_tls_slow_get() else { return }
  goalloc_tls_set(nil)
  goalloc_tls_slow_set(nil)
  MCache(raw).destroy()
}

/// At exit (or library unload): GOALLOC_DEBUG=stats=1 prints MemStats to stderr.
func exitHook() {
  refreshDebugFlags()
  guard let h = globalHeap() else { return }
  h.finishInstrumentation()
  if h.debugFlags & UInt32(GOALLOC_DEBUG_CHECK) != 0 && !h.checkHeapAndReport() { goalloc_abort() }
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

// MARK: malloc

/// Go's mallocgc for the explicit-free world. Returns nil with errno = ENOMEM on failure.
/// - Parameters:
///   - noscan: the object holds no pointers (GC mode: never scanned; Go mode: tiny-eligible).
///   - zero: the memory must read as zero.
///   - mallocMode: C alignment (16 B for requests >= 16 B), no tiny allocator.
@inline(__always) @usableFromInline
func mallocgc(_ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool) -> UnsafeMutableRawPointer? {
  // Fast path: one TLS load, two table loads, then the class's free list or its span's allocCache.
  if _fastPath(UInt(bitPattern: size &- 1) < UInt(maxSmallSize)) && (mallocMode || !noscan || size >= tinySize),
     let raw = goalloc_tls_get() {
    let c = MCache(raw)
    let sc = sizeToClass(size, mallocMode: mallocMode)
    let spc = sc &<< 1 | (noscan ? 1 : 0)
    // The most recently freed object of the class (FreeList), else the span's next free slot.
    let p = mallocListed(c, spc, size, zero: zero)
    if _fastPath(p != 0) { return UnsafeMutableRawPointer(bitPattern: p) }
    let s = c.alloc[spc]
    if let p = s.nextFreeFast() {
      c.countMalloc(spc, requested: size)
      MCache.clearFreeMark(spc, p)
      if zero && s.pointee.needzero != 0 {
        goalloc_memset(UnsafeMutableRawPointer(bitPattern: p), 0, classSize(sc))
      }
      return UnsafeMutableRawPointer(bitPattern: p)
    }
  }
  // One call site for every miss, so the fast path above needs no stack frame.
  return mallocSlow(size, noscan: noscan, zero: zero, mallocMode: mallocMode, alignment: 0)
}

/// The fast path's usual miss: the current span's allocCache is empty (a small, non-tiny object
/// and a fast-path cache, so not instrumented).
@inline(never) @usableFromInline
func mallocRefill(_ c: MCache, _ spc: Int, _ size: Int, zero: Bool) -> UnsafeMutableRawPointer? {
  let p = mallocSmall(c, spc, size, zero: zero)
  if p == 0 { return enomem() }
  let h = c.heap
  if _slowPath(atomicLoad32(&h.pointee.scavenger.pointee.wanted) != 0) { h.startScavengerIfNeeded() }
  return UnsafeMutableRawPointer(bitPattern: p)
}

@inline(never) @usableFromInline
func mallocSlow(_ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool, alignment: Int)
  -> UnsafeMutableRawPointer?
{
  // The fast path's usual miss: its span's allocCache ran dry.
  if alignment == 0 && UInt(bitPattern: size &- 1) < UInt(maxSmallSize) && (mallocMode || !noscan || size >= tinySize),
     let raw = goalloc_tls_get() {
    return mallocRefill(MCache(raw), sizeToClass(size, mallocMode: mallocMode) &<< 1 | (noscan ? 1 : 0), size, zero: zero)
  }
  if size < 0 { return enomem() }
  let size = size == 0 ? 1 : size
  var c: MCache
  if let cc = currentCache() { c = cc } else { return enomem() }
  // A thread past its exit flush gets a cache for this one call.
  let temporary = goalloc_tls_state_get() != 0
  defer { if temporary { releaseThreadCache() } }
  var sc = 0
  let p = mallocWith(c, size, noscan: noscan, zero: zero, mallocMode: mallocMode,
                     alignment: alignment, sizeclass: &sc)
  if p == 0 { return enomem() }
  let h = c.heap
  if _slowPath(atomicLoad32(&h.pointee.scavenger.pointee.wanted) != 0) { h.startScavengerIfNeeded() }
  if _slowPath(h.instrumented) {
    h.recordAlloc(c, p, size: size, sizeclass: sc, slot: sc == 0 ? roundUp(size, pageSize) : classSize(sc))
  }
  return UnsafeMutableRawPointer(bitPattern: p)
}

/// The allocation itself, from cache c; 0 when out of memory. Sets `sizeclass` (0: large).
func mallocWith(_ c: MCache, _ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool,
                alignment: Int, sizeclass: inout Int) -> UInt {
  var size = size
  var sc = 0
  if alignment > (mallocMode ? 16 : 8) {
    // A class whose every slot is aligned (slots start at page-aligned bases), else large.
    if alignment <= pageSize && size <= maxSmallSize {
      sc = sizeToClass(max(size, alignment), mallocMode: mallocMode)
      while sc < numSizeClasses && classSize(sc) & (alignment - 1) != 0 { sc += 1 }
      if sc == numSizeClasses { sc = 0 }
    }
    if sc == 0 {
      size = max(size, maxSmallSize + 1)
      return largeAlloc(c, size, noscan: noscan, zero: zero, alignPages: max(1, alignment / pageSize))
    }
  } else if size > maxSmallSize {
    return largeAlloc(c, size, noscan: noscan, zero: zero, alignPages: 1)
  } else if !mallocMode && noscan && size < tinySize {
    sizeclass = tinySizeClass
    return c.mallocTiny(size)
  } else {
    sc = sizeToClass(size, mallocMode: mallocMode)
  }
  sizeclass = sc
  return mallocSmall(c, sc << 1 | (noscan ? 1 : 0), size, zero: zero)
}

/// A slot of span class spc from cache c (refilling as needed), counted and zeroed if asked;
/// 0 when out of memory.
@inline(__always)
func mallocSmall(_ c: MCache, _ spc: Int, _ size: Int, zero: Bool) -> UInt {
  let listed = mallocListed(c, spc, size, zero: zero)
  if listed != 0 { return listed }
  var p = c.nextFree(spc)
  if p == 0 { return 0 }
  let s = c.alloc[spc]
  if p == s.pointee.startAddr && MCache.hasList(spc) { p = c.colourFirstSlot(spc, s, p) }
  c.countMalloc(spc, requested: size)
  if zero && s.pointee.needzero != 0 {
    goalloc_memset(UnsafeMutableRawPointer(bitPattern: p), 0, classSize(spc &>> 1))
  }
  return p
}

/// The most recently freed object of span class spc off cache c's list, counted and zeroed if
/// asked (a listed object always holds old data); 0 when the list is empty.
@inline(__always)
func mallocListed(_ c: MCache, _ spc: Int, _ size: Int, zero: Bool) -> UInt {
  let p = c.listPop(spc)
  if _fastPath(p != 0) {
    c.countMalloc(spc, requested: size)
    if zero { goalloc_memset(UnsafeMutableRawPointer(bitPattern: p), 0, classSize(spc &>> 1)) }
  }
  return p
}

func enomem() -> UnsafeMutableRawPointer? {
  goalloc_set_errno(goalloc_errno_enomem())
  return nil
}

/// A dedicated span for one object of more than 32 KiB.
/// The largest request served (larger ones fail with ENOMEM before any arithmetic can overflow).
public let maxAllocSize = 1 << (heapAddrBits - 2)
/// The largest alignment served by the aligned entry points.
public let maxAlignment = 1 << 40

func largeAlloc(_ c: MCache, _ size: Int, noscan: Bool, zero: Bool, alignPages: Int) -> UInt {
  if size > maxAllocSize { return 0 }
  let npages = (size + pageSize - 1) >> pageShift
  let h = c.heap
  guard let s = h.allocSpan(npages, spanclass: noscan ? 1 : 0, alignPages: alignPages) else {
    return 0
  }
  atomicAdd64(&h.pointee.largeAllocs, 1)
  atomicAdd64(&h.pointee.largeAllocBytes, UInt64(npages * pageSize))
  if zero && s.pointee.needzero != 0 {
    goalloc_memset(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr), 0, size)
  }
  return s.pointee.startAddr
}

// MARK: free

/// Frees p (nil is a no-op). Invalid pointers are reported as glibc does, then abort (default)
/// or are ignored and counted (GOALLOC_DEBUG=badfree=warn).
@inline(__always) @usableFromInline
func freeObject(_ p: UnsafeMutableRawPointer?, op: StaticString) {
  guard let p else { return }
  // The fast path: a slot of 16 B or more that is handed out goes onto this thread's free list
  // for its class, whoever allocated it. It calls nothing; every other case goes through one
  // call site, not a tail call: the stack frame is then set up on that path only.
  if let raw = goalloc_tls_get(), let s = goalloc_span_lookup(UInt(bitPattern: p))?.assumingMemoryBound(to: MSpan.self) {
    let c = MCache(raw)
    let a = UInt(bitPattern: p)
    let spc = Int(s.pointee.spanclass)
    if MCache.hasList(spc), let idx = s.slotIndex(a) {
      let l = c.list(spc)
      // Handed out: allocated at some time (below highWater) and neither listed nor free since
      // (word 1 holds no mark; l[1] is the key). Safe: a is a slot of at least 16 B.
      if !MCache.isFreeMark(p.load(fromByteOffset: 8, as: UInt.self), key: l[1])
          && UInt(bitPattern: idx) < atomicLoadRelaxedUInt(&s.pointee.highWater) && c.listPush(l, a) {
        c.countFree(spc)
        return
      }
    }
  }
  freeMiss(p, op: op)
  goalloc_no_tail_call()
}

/// Every free the fast path leaves: a thread without a fast-path cache (freeSlow), a full list
/// or a suspicious slot (freeListed), anything else (freeCached: large, tiny, 8 B, not ours).
@inline(never)
func freeMiss(_ p: UnsafeMutableRawPointer, op: StaticString) {
  guard let raw = goalloc_tls_get() else { return freeSlow(p, op: op) }
  let a = UInt(bitPattern: p)
  if let s = goalloc_span_lookup(a)?.assumingMemoryBound(to: MSpan.self) {
    let spc = Int(s.pointee.spanclass)
    if MCache.hasList(spc) && s.slotIndex(a) != nil {
      return freeListed(MCache(raw), s, a, op: op)
    }
  }
  freeCached(raw, p, op: op)
}

/// The full path of a free onto cache c's list: a full list is half flushed first; a slot never
/// handed out, or one already listed or free (a double free), is reported.
@inline(never)
func freeListed(_ c: MCache, _ s: SpanPtr, _ a: UInt, op: StaticString) {
  if !checkHandedOut(c.heap, s, s.objIndex(a), a, op: op) { return }
  let spc = Int(s.pointee.spanclass)
  let l = c.list(spc)
  if !c.listPush(l, a) {
    c.flushList(spc, keep: MCache.listLimit(spc) / 2)
    _ = c.listPush(l, a)
  }
  c.countFree(spc)
}

/// Whether slot idx (address a) of a span with lists is handed out: below the span's high-water
/// mark, and word 1 holds neither FreeList mark. Else reports a wild pointer or a double free.
@inline(__always)
func checkHandedOut(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ idx: Int, _ a: UInt,
                    op: StaticString) -> Bool {
  if UInt(bitPattern: idx) >= atomicLoadRelaxedUInt(&s.pointee.highWater) {
    h.badFree(op, "invalid pointer (not allocated by goalloc)", a)
    return false
  }
  // Safe: slots of classes with lists have a word 1.
  if MCache.isFreeMark(UnsafePointer<UInt>(bitPattern: a).unsafelyUnwrapped[1], key: h.pointee.freeKey) {
    h.badFree(op, "double free detected", a)
    return false
  }
  return true
}

/// Records the free of slot idx of a span owned by cache c in the owner's own bitmap, no atomics;
/// the caller counts it. False (nothing recorded) when the slot is not allocated or already
/// freed: a double free.
@inline(__always)
func ownerFree(_ c: MCache, _ s: SpanPtr, _ idx: Int) -> Bool {
  if !s.isUserHeld(idx) { return false }
  ownerFreeChecked(c, s, idx)
  return true
}

/// ownerFree of a slot known to be held (a flushed list object): the bit, `localFreed`, and a
/// ready span this free empties may go back to the mcentral.
@inline(__always)
func ownerFreeChecked(_ c: MCache, _ s: SpanPtr, _ idx: Int) {
  let moves = ownerFreeMovesSpan(s)
  s.localWord(idx &>> 6).pointee |= 1 &<< UInt64(idx & 63)
  counterBump(&s.pointee.localFreed)
  if moves { c.readySpanEmptied(s) }
}

/// Whether the owner's next free into s empties one of its ready spans (the full path handles it).
/// Other threads' frees count by words here (at most their number): a span they helped empty may
/// stay ready until it is used or the thread exits.
@inline(__always)
func ownerFreeMovesSpan(_ s: SpanPtr) -> Bool {
  s.pointee.place == placeReady
    && Int(truncatingIfNeeded: s.pointee.localFreed) &+ 1 &+ max(0, s.pendingFrees) >= s.pointee.allocCount
}

@inline(never)
func freeCached(_ raw: UnsafeMutableRawPointer, _ p: UnsafeMutableRawPointer, op: StaticString) {
  let c = MCache(raw)
  freeIn(c.heap, c.header.pointee.arenas, raw, UInt(bitPattern: p), op: op)
}

/// free without a fast-path cache: cacheless threads, and instrumented mode.
@inline(never)
func freeSlow(_ p: UnsafeMutableRawPointer, op: StaticString) {
  guard let h = globalHeap() else { return }
  let raw = goalloc_tls_slow_get()
  if h.instrumented { h.recordFree(UInt(bitPattern: p)) }
  freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), raw, UInt(bitPattern: p), op: op)
}

/// Frees address a of heap h (arena index `index`); `raw` is the calling thread's cache of that
/// heap, if it has one (it only receives the free counters).
@inline(__always) @usableFromInline
func freeIn(_ h: UnsafeMutablePointer<MHeap>, _ index: UnsafeMutableRawPointer,
            _ raw: UnsafeMutableRawPointer?, _ a: UInt, op: StaticString) {
  // A span is in the arena index exactly while it is in use or in the LargeCache (entries are
  // cleared, under the heap lock, before a span is freed; freeLarge reports a cached one), so the
  // index alone tells "ours".
  guard let s = spanOfIndex(index, a) else {
    h.badFree(op, "invalid pointer (not allocated by goalloc)", a)
    return
  }
  let spc = Int(s.pointee.spanclass)
  // Safe: unsigned compare folds "large (0, 1) or tiny (136)" into one branch.
  if _slowPath(UInt(bitPattern: spc &- 2) >= UInt(tinySpanClass - 2)) {
    return freeUncommon(h, raw, s, a, op: op)
  }
  guard let idx = s.slotIndex(a) else {
    h.badFree(op, "invalid pointer (interior pointer)", a)
    return
  }
  if MCache.hasList(spc) {
    if let raw { return freeListed(MCache(raw), s, a, op: op) }
    // A thread without a cache: straight to the bitmaps, with the checks of freeListed, marked.
    if !checkHandedOut(h, s, idx, a, op: op) { return }
    // Safe: slots of classes with lists have a word 1.
    UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped[1] = h.pointee.freeKey
  }
  if let raw {
    // 8 B slots (no room for a list's marks).
    let c = MCache(raw)
    if atomicLoadRelaxedUInt(&s.pointee.owner) == UInt(bitPattern: raw) {
      if _slowPath(!ownerFree(c, s, idx)) { return h.badFree(op, "double free detected", a) }
      c.countFree(spc)
    } else if freeSlot(h, raw, s, idx, a, op: op) {
      c.countFree(spc)
    }
  } else if freeSlot(h, nil, s, idx, a, op: op) {
    atomicAdd64(h.pointee.globalFrees + MCache.freesIdx(spc), 1)
  }
}

/// Large objects and tiny blocks.
@inline(never)
func freeUncommon(_ h: UnsafeMutablePointer<MHeap>, _ raw: UnsafeMutableRawPointer?, _ s: SpanPtr,
                  _ a: UInt, op: StaticString) {
  if s.isLarge { return freeLarge(h, s, a, op: op) }
  freeTiny(h, raw, s, s.objIndex(a), a, op: op)
}

/// Records slot idx of small span s as free. Returns false (after reporting) on a double free.
/// `raw` is the calling thread's cache (it may claim a floating span into its ready list);
/// `batch`, when given, collects the floating spans bound for the mcentral (see claimFloating).
@inline(__always) @discardableResult
func freeSlot(_ h: UnsafeMutablePointer<MHeap>, _ raw: UnsafeMutableRawPointer?, _ s: SpanPtr,
              _ idx: Int, _ a: UInt, op: StaticString, batch: UnsafeMutablePointer<SpanPtr?>? = nil) -> Bool {
  let bit: UInt64 = 1 &<< UInt64(idx & 63)
  let word = atomicOr64(s.freeWord(idx &>> 6), bit)
  if _slowPath(word & bit != 0) {
    h.badFree(op, "double free detected", a)
    return false
  }
  // Pending counts words with remote bits, so only the first free into a clean word pays for a
  // second atomic. A floating span never has such a word (it floats only with none pending), so
  // the first free after it floated always gets here and sees no flag.
  if word == 0 {
    let old = atomicAdd64(&s.pointee.freeState, fsPendingOne)
    if _slowPath(old & fsFlags == 0) { claimFloating(h, raw, s, batch: batch) }
  }
  return true
}

/// The span was floating (full, owned by nobody): the first free to notice claims it, into the
/// freeing thread's ready list if that thread filled it (no lock), else onto its mcentral's
/// partial list, where any thread's refill finds it: a thread does not hoard the spans of others
/// (with free lists, such frees arrive in flushes; holding up to 16 per class made xmalloc's
/// peak RSS 25.9 MiB against 18.8). With `batch`, the span is linked there (through `next`) for
/// the caller to queue with one lock.
@inline(never)
func claimFloating(_ h: UnsafeMutablePointer<MHeap>, _ raw: UnsafeMutableRawPointer?, _ s: SpanPtr,
                   batch: UnsafeMutablePointer<SpanPtr?>? = nil) {
  let spc = Int(s.pointee.spanclass)
  let mine = raw.map { MCache($0) }.flatMap { $0.heap == h && $0.filled(s) ? $0 : nil }
  let flag = mine != nil ? fsCached : fsPartial
  while true {
    let cur = atomicLoad64(&s.pointee.freeState)
    if cur & fsFlags != 0 || fsPending(cur) <= 0 { return }
    if atomicCAS64(&s.pointee.freeState, cur, cur | flag) { break }
  }
  if let mine { return mine.addReady(spc, s) }
  if let batch {
    s.pointee.next = batch.pointee
    batch.pointee = s
  } else {
    (h.pointee.centrals + spc).queuePartial(s)
  }
}

@inline(never)
func freeLarge(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ a: UInt, op: StaticString,
               keep: Bool = true) {
  if a != s.pointee.startAddr {
    h.badFree(op, "invalid pointer (interior pointer)", a)
    return
  }
  if !atomicCAS32(&s.pointee.state, spanInUse, spanFreeing) {
    h.badFree(op, "double free detected", a)
    return
  }
  atomicAdd64(&h.pointee.largeFrees, 1)
  atomicAdd64(&h.pointee.largeFreeBytes, UInt64(s.pointee.npages * pageSize))
  if keep { h.freeLargeSpan(s) } else { h.freeSpan(s) }
}

@inline(never)
func freeTiny(_ h: UnsafeMutablePointer<MHeap>, _ raw: UnsafeMutableRawPointer?, _ s: SpanPtr,
              _ idx: Int, _ a: UInt, op: StaticString) {
  let count = s.pointee.tinyCounts! + idx
  let old = atomicSub8(count, 1)
  if old == 0 {
    atomicAdd8(count, 1)
    h.badFree(op, "double free detected (tiny object)", a)
    return
  }
  let c = raw.map { MCache($0) }
  if let c { counterBump(c.counters + MCache.tinyFreesIdx) }
  else { atomicAdd64(h.pointee.globalFrees + MCache.tinyFreesIdx, 1) }
  if old == 1 {
    let blk = s.pointee.startAddr + UInt(idx * tinySize)
    if freeSlot(h, raw, s, idx, blk, op: op) {
      if let c { counterBump(c.counters + MCache.tinyBlockFreesIdx) }
      else { atomicAdd64(h.pointee.globalFrees + MCache.tinyBlockFreesIdx, 1) }
    }
  }
}

// MARK: size queries and realloc

/// Bytes usable at p (the slot size, or the large span's size); 0 for tiny sub-objects, whose
/// extent is not recorded. Reports (and returns 0 for) pointers that are not live objects.
public func usableSize(_ p: UnsafeRawPointer?, op: StaticString = "malloc_usable_size") -> Int {
  guard let p, let h = globalHeap() else { return 0 }
  let a = UInt(bitPattern: p)
  guard let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), a),
        atomicLoad32(&s.pointee.state) == spanInUse else {
    h.badFree(op, "invalid pointer (not allocated by goalloc)", a)
    return 0
  }
  if s.isLarge {
    if a != s.pointee.startAddr {
      h.badFree(op, "invalid pointer (interior pointer)", a)
      return 0
    }
    return s.pointee.elemsize
  }
  if Int(s.pointee.spanclass) == tinySpanClass { return 0 }
  if s.slotIndex(a) == nil {
    h.badFree(op, "invalid pointer (interior pointer)", a)
    return 0
  }
  return s.pointee.elemsize
}

/// C realloc semantics (glibc): nil -> malloc; size 0 -> free and nil; in place when the new
/// size still fits the slot without wasting more than half of it.
func reallocObject(_ p: UnsafeMutableRawPointer?, _ size: Int, mallocMode: Bool)
  -> UnsafeMutableRawPointer?
{
  guard let p else { return mallocgc(size, noscan: true, zero: false, mallocMode: mallocMode) }
  if size == 0 {
    freeObject(p, op: "realloc")
    return nil
  }
  if size < 0 || size > maxAllocSize { return enomem() }
  let old = usableSize(p, op: "realloc")
  if old == 0 { return nil }  // reported as invalid (warn mode)
  // Fits: stay in place unless that would waste more than half of the block (a large block keeps
  // the headroom a geometric move gave it; trimming it would cost the next growth a move).
  if size <= old && (size > old / 2 || old <= 16) {
    if _slowPath(goalloc_tls_get() == nil), let h = globalHeap(), h.instrumented,
       let c = currentCache() {
      h.recordFree(UInt(bitPattern: p))
      h.recordAlloc(c, UInt(bitPattern: p), size: size, sizeclass: old <= maxSmallSize ? sizeToClass(old, mallocMode: mallocMode) : 0, slot: 0)
    }
    return p
  }
  // Large to large: resize the span in place when its neighbours allow.
  if old > maxSmallSize && size > maxSmallSize, let h = globalHeap(),
     let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), UInt(bitPattern: p)) {
    let npages = (size + pageSize - 1) >> pageShift
    let oldPages = s.pointee.npages
    if h.resizeLarge(s, to: npages) {
      if npages > oldPages { atomicAdd64(&h.pointee.largeAllocBytes, UInt64((npages - oldPages) * pageSize)) }
      else { atomicAdd64(&h.pointee.largeFreeBytes, UInt64((oldPages - npages) * pageSize)) }
      if _slowPath(goalloc_tls_get() == nil), h.instrumented, let c = currentCache() {
        h.recordFree(UInt(bitPattern: p))
        h.recordAlloc(c, UInt(bitPattern: p), size: size, sizeclass: 0, slot: 0)
      }
      return p
    }
  }
  // Growing by moving: a buffer that keeps growing should move O(log n) times, not once per size
  // class or page. A small block grows by at least half; a large one is rounded up to half a
  // power of two (untouched headroom pages cost no memory).
  var newSize = size
  if size > old {
    if size < old + old / 2 && old + old / 2 <= maxSmallSize { newSize = old + old / 2 }
    if newSize > maxSmallSize {
      let pages = (newSize + pageSize - 1) >> pageShift
      let top = Int.bitWidth - 1 - pages.leadingZeroBitCount  // floor(log2(pages))
      let step = top >= 1 ? 1 << (top - 1) : 1
      newSize = ((pages + step - 1) / step * step) << pageShift
    }
  }
  guard let q = mallocgc(min(newSize, maxAllocSize), noscan: true, zero: false, mallocMode: mallocMode)
          ?? (newSize != size ? mallocgc(size, noscan: true, zero: false, mallocMode: mallocMode) : nil)
  else { return nil }
  goalloc_memcpy(q, p, min(old, size))
  // A large block grown away from is not wanted again at its size: its pages go straight back
  // to the page heap (where a neighbour may grow into them), not to the LargeCache. (With a
  // fast-path cache only: otherwise the free must be recorded, through freeObject.)
  if old > maxSmallSize, goalloc_tls_get() != nil, let h = globalHeap(),
     let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), UInt(bitPattern: p)), s.isLarge {
    freeLarge(h, s, UInt(bitPattern: p), op: "realloc", keep: false)
  } else {
    freeObject(p, op: "realloc")
  }
  return q
}

// MARK: public entry points (the C ABI and the Swift API are thin layers over these)

/// malloc: `size` bytes, or nil with errno = ENOMEM.
@inline(__always) public func goMalloc(_ size: Int, noscan: Bool = true, zero: Bool = false,
                                       mallocMode: Bool) -> UnsafeMutableRawPointer? {
  mallocgc(size, noscan: noscan, zero: zero, mallocMode: mallocMode)
}

/// free; `op` names the C function in diagnostics.
@inline(__always) public func goFree(_ p: UnsafeMutableRawPointer?, op: StaticString = "free") {
  freeObject(p, op: op)
}

/// realloc with glibc's contract.
public func goRealloc(_ p: UnsafeMutableRawPointer?, _ size: Int, mallocMode: Bool) -> UnsafeMutableRawPointer? {
  reallocObject(p, size, mallocMode: mallocMode)
}

/// `size` bytes at a multiple of `alignment` (a power of two; any size up to the heap's limit).
public func goAlignedAlloc(_ size: Int, alignment: Int, noscan: Bool = true, zero: Bool = false,
                           mallocMode: Bool) -> UnsafeMutableRawPointer? {
  // size_t values above Int.max arrive negative: no such request can be served.
  if size < 0 || size > maxAllocSize || alignment <= 0 || alignment > maxAlignment { return enomem() }
  // Every class of 16 B or more is 16-aligned in malloc mode, every class 8-aligned in Go mode.
  if alignment <= (mallocMode ? 16 : 8) {
    return mallocgc(max(size, alignment), noscan: noscan, zero: zero, mallocMode: mallocMode)
  }
  return mallocSlow(max(size, 1), noscan: noscan, zero: zero, mallocMode: mallocMode, alignment: alignment)
}

/// Gives empty spans back to the page heap and every free page back to the OS.
/// Returns the bytes released to the OS.
@discardableResult public func goReleaseFreeMemory() -> Int {
  // The calling thread's free lists first: their objects may be all that holds a span.
  if let raw = goalloc_tls_get() ?? goalloc_tls_slow_get() { MCache(raw).flushLists() }
  return globalHeap()?.releaseAll() ?? 0
}

/// A MemStats snapshot of the process-wide heap.
public func goReadMemStats() -> MemStats {
  guard let h = globalHeap() else { return MemStats() }
  return MemStats.read(h)
}

// MARK: testing SPI

nonisolated(unsafe) var exclusiveTestLock: LockWord = 0

/// Runs `body` while no other caller of this function runs: tests that compare global counters
/// (in any test target of the process) serialize through it.
public func _withExclusiveGlobalHeapForTesting<T>(_ body: () -> T) -> T {
  lockAcquire(&exclusiveTestLock)
  defer { lockRelease(&exclusiveTestLock) }
  return body()
}
