// Free: the explicit free that Go's allocator never had. See Malloc.swift for an overview.
//
// Freeing p, from the top:
//   1. The span of p: one load in the flat span table (the first 64 GiB of heap), else the arena
//      index; looked up once and handed down. "Not ours", dead spans and interior pointers are
//      reported (`MHeap.badFree`: abort, or count and go on with GOALLOC_DEBUG=badfree=warn).
//   2. A slot of 16 B or more, handed out, of a span at home in this thread's cache (MSpan.home:
//      it owns the span or did last) goes onto this thread's FreeList for its class (the fast
//      path, `freeObject`); a full list sends half of itself to the span bitmaps first
//      (MCache.flushList). Another thread's slot of 64 B or more goes there too (`freeListed`,
//      off the fast path: this thread reuses it, as tcmalloc); a smaller one goes home
//      (`freeForeign`): reused here, it would share lines with the owner's live objects.
//   3. What reaches the bitmaps (small objects of other threads, list flushes, 8 B slots): in a
//      span this thread owns, a plain bit (MCache.ownerFree); else an atomic bit and perhaps a
//      claim of a floating span (MCache.freeRemote); a flush sends a run of slots in one bitmap
//      word with one atomic.
//   4. Tiny sub-objects count down their block; the last one frees the block as in 3.
//   5. Large objects: a span of up to 256 KiB goes to this thread's LargeBins (no lock); a larger
//      one (or one freed by a thread without a cache) to the LargeCache or back to the page heap.
//
// Invariants: a free is reported or recorded exactly once; the fast path calls nothing and has no
// stack frame (every other case goes through the one call site `freeMiss`).
import CGoAllocShim

/// Frees p (nil is a no-op). Invalid pointers are reported as glibc does, then abort (default)
/// or are ignored and counted (GOALLOC_DEBUG=badfree=warn).
@inline(__always) @usableFromInline
func freeObject(_ p: UnsafeMutableRawPointer?, op: StaticString) {
  // The fast path: a handed-out slot of a span at home in this thread's cache goes onto the
  // cache's free list for its class. It calls nothing; every other case (nil included: its
  // lookup misses the window) goes through one call site, not a tail call: the stack frame is
  // then set up on that path only.
  let a = UInt(bitPattern: p)
  let span = goalloc_span_lookup(a)?.assumingMemoryBound(to: MSpan.self)
  if let s = span {
    // Only a span at home in this cache takes the free onto its list (home == the cache implies
    // a class with lists: MCache.ownerTag); another thread's object goes back to its span. (A
    // thread without a cache reads the idle cache, which no span's home is.)
    let t = UInt(bitPattern: goalloc_tls_fast())
    if goalloc_load_racy(&s.pointee.home) == t && s.isHandedOutSlot(a) {
      let c = MCache(UnsafeMutableRawPointer(bitPattern: t).unsafelyUnwrapped)
      // (The list's own copy of the key: the cache line the push writes anyway.)
      if c.listPushFree(c.group(at: s.pointee.groupOffset), a) { return }
    }
  }
  freeMiss(p, span, op: op)
  goalloc_no_tail_call()
}

/// Every free the fast path leaves: a thread without a fast-path cache (freeSlow), a full list
/// or a suspicious slot (freeListed), anything else (large, tiny, 8 B, not ours). `span`: what
/// the fast path's lookup in the flat span table found (nil: look in the arena index).
@inline(never)
func freeMiss(_ p: UnsafeMutableRawPointer?, _ span: SpanPtr?, op: StaticString) {
  guard let p else { return }
  guard let raw = goalloc_tls_get() else { return freeSlow(p, span, op: op) }
  let c = MCache(raw)
  let a = UInt(bitPattern: p)
  // The commonest misses first, without freeIn's dispatch: another thread's small object goes
  // home (freeForeign bounds the index by highWater); a large object of up to 256 KiB goes to
  // this thread's LargeBins.
  if let s = span, s.pointee.collected == 0 {
    let spc = s.spanClass
    if MCache.hasList(spc) {
      if c.goesHome(s), let idx = s.slotIndexUnbounded(a) { return freeForeign(c, s, idx, a, op: op) }
    } else if spc.isLarge && a == s.pointee.startAddr && c.freeBinned(c.heap, s, a, op: op) {
      return
    }
  }
  freeIn(c.heap, c.header.pointee.arenas, raw, a, span: span, op: op)
}

/// free without a fast-path cache: cacheless threads, and instrumented mode.
@inline(never)
func freeSlow(_ p: UnsafeMutableRawPointer, _ span: SpanPtr?, op: StaticString) {
  guard let h = globalHeap() else { return }
  // A thread that only frees (a consumer) gets a cache too: its counters are then its own,
  // not shared atomics every other such thread writes. (Not once the thread is exiting.)
  var raw = goalloc_tls_slow_get()
  if raw == nil && goalloc_tls_state_get() == 0 { raw = createThreadCache()?.raw }
  if h.instrumented { h.recordFree(UInt(bitPattern: p)) }
  freeIn(h, UnsafeMutableRawPointer(h.pointee.arenas), raw, UInt(bitPattern: p), span: span, op: op)
}

/// Frees address a of heap h (arena index `index`); `raw` is the calling thread's cache of that
/// heap, if it has one; `span` the span of a if the caller found it already.
@inline(__always) @usableFromInline
func freeIn(_ h: UnsafeMutablePointer<MHeap>, _ index: UnsafeMutableRawPointer,
            _ raw: UnsafeMutableRawPointer?, _ a: UInt, span: SpanPtr? = nil, op: StaticString) {
  // A span is in the arena index exactly while it is in use or in the LargeCache (entries are
  // cleared, under the heap lock, before a span is freed; freeLarge reports a cached one), so the
  // index alone tells "ours".
  guard let s = span ?? spanOfIndex(index, a) else {
    h.badFree(op, "invalid pointer (not allocated by goalloc)", a)
    return
  }
  if _slowPath(s.pointee.collected != 0) { return gcFreeObject(h, s, a, op: op) }  // GC mode (MallocGC)
  let spc = s.spanClass
  if _slowPath(!spc.isSmall) { return freeUncommon(h, raw, s, a, op: op) }
  guard let idx = s.slotIndex(a) else {
    h.badFree(op, "invalid pointer (interior pointer)", a)
    return
  }
  if MCache.hasList(spc) {
    if let raw {
      let c = MCache(raw)
      return c.goesHome(s) ? freeForeign(c, s, idx, a, op: op) : freeListed(c, s, idx, a, op: op)
    }
    // A thread without a cache: straight to the span's bitmaps, with freeListed's checks, marked.
    if !checkHandedOut(h, s, idx, a, op: op) { return }
    MCache.setFreeMark(a, key: h.pointee.freeKey)
  }
  if let raw {
    // 8 B slots (no room for a list's marks).
    let c = MCache(raw)
    if c.owns(s) {
      if _slowPath(!c.ownerFree(s, idx)) { return h.badFree(op, "double free detected", a) }
      c.countFree(spc)
    } else if MCache.freeRemote(h, c, s, idx, a, op: op) {
      c.countFree(spc)
    }
  } else if MCache.freeRemote(h, nil, s, idx, a, op: op) {
    atomicAdd64(h.pointee.globalFrees + MCache.freesIdx(spc), 1)
  }
}

/// The full path of a free onto cache c's list: a full list is half flushed first; a slot never
/// handed out, or one already listed or free (a double free), is reported. Near the memory limit
/// the lists are closed and the free goes to the slot's span (MemoryLimit: `freeLean`).
@inline(never)
func freeListed(_ c: MCache, _ s: SpanPtr, _ idx: Int, _ a: UInt, op: StaticString) {
  if !checkHandedOut(c.heap, s, idx, a, op: op) { return }
  let spc = s.spanClass
  if _slowPath(c.header.pointee.secure) {  // SecureMode: no list takes a free
    c.quarantineFree(a)
    return c.countFree(spc)
  }
  c.followLimit()
  if _slowPath(c.header.pointee.lean) { return c.freeLean(s, idx, a, op: op) }  // MemoryLimit
  let l = c.list(spc)
  if !c.listPush(l, a) {
    c.flushList(spc, keep: MCache.listLimit(spc) / 2)
    _ = c.listPush(l, a)
  }
  MCache.countListFree(l)
}

/// Objects of this size or more freed by another thread go onto that thread's FreeList.
/// Slots of this size or more that another thread frees go onto the freeing thread's FreeList
/// (it reuses them: no atomic, as tcmalloc); smaller ones go home. A slot under a cache line
/// shares its lines with the owner's live neighbours, so reusing it in another thread is
/// passive false sharing; a larger one shares at most its two edge lines. Measured side by side
/// (2 CPUs): a 16 and 48 B false-sharing loop ran up to 2x faster going home, 80 and 128 B the
/// same either way; xthread (1..1000 B handed between 4 threads) 1.6x slower with every object
/// going home (an atomic on a line the owner's core holds, where the list push has none).
let migrateMinSize = 64

/// Another thread's object under `migrateMinSize` (its span is not at home in cache c): marked
/// free and straight back to its span's bitmaps (an atomic bit; the owner folds it), or into the
/// quarantine in secure mode.
@inline(never)
func freeForeign(_ c: MCache, _ s: SpanPtr, _ idx: Int, _ a: UInt, op: StaticString) {
  if !checkHandedOut(c.heap, s, idx, a, op: op) { return }
  let spc = s.spanClass
  if _slowPath(c.header.pointee.secure) { c.quarantineFree(a) } else {
    MCache.setFreeMark(a, key: c.heap.pointee.freeKey)
    if !MCache.freeRemote(c.heap, c, s, idx, a, op: op) { return }
  }
  c.countFree(spc)
}

/// Whether slot idx (address a) of a span with lists is handed out: word 1 holds neither
/// FreeList mark (listed, or free in the bitmap), and the slot is below the span's high-water
/// mark (it was handed out at some time).
@inline(__always)
func isHandedOut(_ s: SpanPtr, _ idx: Int, _ a: UInt, key: UInt) -> Bool {
  !MCache.hasFreeMark(a, key: key) && UInt(bitPattern: idx) < s.highWater
}

/// isHandedOut, else reports a wild pointer or a double free.
@inline(__always)
func checkHandedOut(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ idx: Int, _ a: UInt,
                    op: StaticString) -> Bool {
  if _fastPath(isHandedOut(s, idx, a, key: h.pointee.freeKey)) { return true }
  if UInt(bitPattern: idx) >= s.highWater {
    h.badFree(op, "invalid pointer (not allocated by goalloc)", a)
    return false
  }
  if MCache.hasFreeMark(a, key: h.pointee.freeKey) {
    h.badFree(op, "double free detected", a)
    return false
  }
  return true
}

/// Large objects and tiny blocks.
@inline(never)
func freeUncommon(_ h: UnsafeMutablePointer<MHeap>, _ raw: UnsafeMutableRawPointer?, _ s: SpanPtr,
                  _ a: UInt, op: StaticString) {
  if s.isLarge {
    // Up to 256 KiB: into this thread's LargeBins (no lock).
    if let raw, a == s.pointee.startAddr, MCache(raw).heap == h, MCache(raw).freeBinned(h, s, a, op: op) { return }
    return freeLarge(h, s, a, op: op, keep: true)
  }
  freeTiny(h, raw, s, s.objIndex(a), a, op: op)
}

/// A large object not for the LargeBins: to the LargeCache or (`keep` false: realloc moved away
/// from it) straight to the page heap.
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
    if MCache.freeRemote(h, c, s, idx, blk, op: op) {
      if let c { counterBump(c.counters + MCache.tinyBlockFreesIdx) }
      else { atomicAdd64(h.pointee.globalFrees + MCache.tinyBlockFreesIdx, 1) }
    }
  }
}

/// free; `op` names the C function in diagnostics.
@inline(__always) public func goFree(_ p: UnsafeMutableRawPointer?, op: StaticString = "free") {
  freeObject(p, op: op)
}
