// MallocGC: allocation and explicit free of collected objects (the GC mode's mallocgc).
//
// A collected object lives in a collected span (SpanClass's collected bit; MSpan.collected) of
// the one heap. Each thread allocates from its own GC cache (MGC.swift: a current span per
// shape, size class x noscan), apart from its mcache, so the malloc and free fast paths are the
// same instructions as without the GC mode. Taking a slot, and changing which spans the GC cache
// holds, happen inside a *critical section* (`goalloc_gc_enter_busy` / `leave_busy`, stw.c): a
// stop signal that lands there is honoured when the section ends, so the collector always sees
// a GC cache and its spans whole. No lock is ever taken inside the section.
// Refill (the section left): the exhausted span goes back to its shape's lists (`gcUncacheSpan`,
// MGCCentral), the pacer's trigger is checked (`heapLive >= heapGoal`; the place stage 2 charges
// an assist, `gcRefillCharge`), and a span with free slots comes from a swept partial span, a
// lazily swept one or the page heap (`gcCacheSpan`, after the proportional sweep's due); heapLive
// grows by its free bytes (Go's accounting). While the span in hand is in no slot it sits in the
// cache's handoff word, so the collector's flip sweeps it with the slots.
// Sizes: C's alignment (malloc mode: 16 B for 16 B and more); scan objects are zeroed, noscan
// ones are not (bdwgc's GC_malloc_atomic). Zeroing: a refill that takes a scan span with
// needzero set zeroes all its free slots there (runs of them at once, inside the critical
// section) and clears needzero, so only a span swept at the flip while held (needzero set
// again) zeroes object by object until its next refill. More than 32 KiB: a span of its own, zeroed whole if
// scanned (a conservative scan reads all of it).
// Explicit free (goalloc_gc_free, and free() of a collected object, which arrives here from
// Free.swift because a collected span is never at home in an mcache): a bit in the span's
// freeBits (atomic OR; a bit already set is a double free), applied by the next sweep; a large
// object's span goes back at once. An object the last mark did not reach, in a span not swept
// yet, is not allocated: its free is reported as a double free, as after an eager sweep. Uncollectable objects are malloc objects of a scan class
// (scanned as roots while allocated: MGCMark), freed by the ordinary free.
import CGoAllocShim

/// A collected object of `size` bytes (scan: zeroed; noscan: not), or nil with ENOMEM.
@inline(never)
func gcMalloc(_ size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
  if size < 0 || size > maxAllocSize { return enomem() }
  let n = max(size, 1)
  guard let h = globalHeap(), let gc = h.gcState(), let c = currentCache(), let g = gcCache(c, gc) else {
    return enomem()
  }
  if n > maxSmallSize { return gcMallocLarge(h, gc, g, n, noscan: noscan) }
  let sc = sizeToClass(n, mallocMode: true)
  let shape = SpanClass(sizeclass: sc, noscan: noscan)
  let slot = GCCache.span(g, shape.index)
  let handoff = GCCache.handoff(g)
  let empty = h.pointee.emptySpan
  var p: UInt = 0
  var zero = false
  goalloc_gc_enter_busy()
  while true {
    let s = slot.pointee
    if let q = s.nextFreeFast() {
      p = q
      zero = s.pointee.needzero != 0
      break
    }
    let i = s.nextFreeIndex()
    if i < s.pointee.nelems {
      s.pointee.allocCount += 1
      p = s.pointee.startAddr + UInt(i * s.pointee.elemsize)
      s.raiseHighWater(p)
      zero = s.pointee.needzero != 0
      break
    }
    // Refill, outside the critical section (locks; perhaps a collection). The span in hand is
    // in the handoff word whenever it is in no slot and on no list (MGCCentral).
    slot.pointee = empty
    if s != empty {
      handoff.pointee = s
      GCCache.handoffFrom(handoff).pointee = GCCache.from(g, shape.index).pointee
    }
    goalloc_gc_leave_busy()
    if s != empty { gcUncacheSpan(h, gc, handoff: handoff, s) }
    gcRefillCharge(gc, g, bytes: gcSpanPages(sc) &* pageSize)
    guard let ns = gcCacheSpan(h, gc, owner: GCCache.ownerTag(g), handoff: handoff,
                               SpanClass(sizeclass: sc, noscan: noscan, collected: true)) else {
      return enomem()
    }
    goalloc_gc_enter_busy()
    slot.pointee = ns
    GCCache.from(g, shape.index).pointee = GCCache.handoffFrom(handoff).pointee
    handoff.pointee = nil
    // Scan objects are handed out zeroed: a span that needs it is zeroed here, its free slots
    // in runs, once, instead of object by object below (inside the section: a flip cannot
    // free more of its slots meanwhile and set needzero again).
    if !noscan && ns.pointee.needzero != 0 {
      gcZeroFreeSlots(ns)
      ns.pointee.needzero = 0
    }
  }
  goalloc_gc_leave_busy()
  let es = classSize(sc)
  counterBump(GCCache.counter(g, GCCache.mallocs))
  counterBump(GCCache.counter(g, GCCache.bytes), UInt64(es))
  if zero && !noscan { goalloc_memset(UnsafeMutableRawPointer(bitPattern: p), 0, es) }
  return UnsafeMutableRawPointer(bitPattern: p)
}

/// Zeroes every free slot of small span s (slots at or past freeindex whose alloc bit is
/// clear), a run of adjacent free slots with one memset. s is the caller's (a GC cache's, in
/// its critical section).
@inline(never)
func gcZeroFreeSlots(_ s: SpanPtr) {
  let n = s.pointee.nelems, es = s.pointee.elemsize, base = s.pointee.startAddr
  var i = s.pointee.freeindex
  while i < n {
    // The first free slot at or after i.
    let w = i &>> 6
    let free = ~s.allocWord(w).pointee & (~UInt64(0) &<< UInt64(i & 63))
    if free == 0 {
      i = (w &+ 1) &<< 6
      continue
    }
    let start = w &<< 6 &+ free.trailingZeroBitCount
    if start >= n { return }
    // The first allocated slot after it (slots past nelems read as allocated).
    var j = start
    while j < n {
      let wj = j &>> 6
      let used = s.allocWord(wj).pointee & (~UInt64(0) &<< UInt64(j & 63))
      if used != 0 {
        j = wj &<< 6 &+ used.trailingZeroBitCount
        break
      }
      j = (wj &+ 1) &<< 6
    }
    let end = min(j, n)
    goalloc_memset(UnsafeMutableRawPointer(bitPattern: base &+ UInt(start &* es)), 0, (end &- start) &* es)
    i = end
  }
}

/// The refill's hook for the pacer: while a concurrent mark runs, charges the `bytes` the
/// thread whose GC cache is g is about to allocate (MGCAssist); starts a cycle when heapLive
/// reached the trigger.
@inline(__always)
func gcRefillCharge(_ gc: UnsafeMutablePointer<GCState>, _ g: UnsafeMutableRawPointer, bytes: Int) {
  if _slowPath(atomicLoadRelaxed32(&gc.pointee.work.pointee.assistOpen) != 0) && !gc.gcLimiting {
    gc.gcAssistAlloc(debtWord: GCCache.counter(g, GCCache.assistDebtWord),
                     cycleWord: GCCache.counter(g, GCCache.assistCycleWord), bytes: bytes)
  }
  if _slowPath(gc.gcTriggered()) { gcCollect(forced: false) }
}

func gcMallocLarge(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, _ g: UnsafeMutableRawPointer,
                   _ size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
  gcRefillCharge(gc, g, bytes: size)
  let npages = (size + pageSize - 1) >> pageShift
  gc.gcDeductSweepCredit(h, UInt64(npages * pageSize))
  if atomicLoad64(&gc.pointee.unswept) > 0 { gc.gcReclaim(h, npages) }
  guard let s = h.allocSpanReclaiming(npages, spanclass: .large(noscan: noscan), collected: true) else { return enomem() }
  let bytes = UInt64(s.pointee.elemsize)
  atomicAdd64(&gc.pointee.heapLive, bytes)
  atomicAdd64(&gc.pointee.largeMallocs, 1)
  atomicAdd64(&gc.pointee.largeBytes, bytes)
  if !noscan && s.pointee.needzero != 0 {
    goalloc_memset(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr), 0, s.pointee.elemsize)
  }
  // Collected, and on its full list, under the lock a stop waits for (MGCCentral).
  let central = gc.gcCentral(h, Int(s.pointee.spanclass))
  lockAcquire(&central.pointee.lock)
  atomicStore32(&s.pointee.sweepgen, gc.pointee.sweepgen)
  s.pointee.collected = 1
  gc.gcListPush(s, full: true)
  // Allocated black during a concurrent mark (the phase changes only under every central lock).
  if atomicLoad32(&gc.pointee.phase) == GCPhase.mark.rawValue { gc.gcBlackenLarge(s) }
  lockRelease(&central.pointee.lock)
  return UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr)
}

/// An explicit free of address a in collected span s (goalloc_gc_free, free, realloc). An
/// object the last mark found unreachable is no longer allocated, swept or not: freeing it is a
/// double free.
@inline(never)
func gcFreeObject(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ a: UInt, op: StaticString) {
  let gc = h.gcExisting
  if s.isLarge {
    if a != s.pointee.startAddr { return h.badFree(op, "invalid pointer (interior pointer)", a) }
    if let gc, gc.gcIsDead(s, 0) { return h.badFree(op, "double free detected (the collector freed it)", a) }
    if let gc, gcFreeLargeDuringMark(h, gc, s, a, op: op) { return }
    if !atomicCAS32(&s.pointee.state, spanInUse, spanFreeing) { return h.badFree(op, "double free detected", a) }
    if atomicLoad32(&s.pointee.specials) != 0 { gcSpecialsObjectFreed(h, s, a, s.pointee.elemsize) }
    guard let gc else { return }
    let bytes = UInt64(s.pointee.elemsize)
    atomicAdd64(&gc.pointee.frees, 1)
    atomicAdd64(&gc.pointee.freedBytes, bytes)
    let live = atomicLoad64(&gc.pointee.heapLive)
    atomicStore64(&gc.pointee.heapLive, live > bytes ? live - bytes : 0)
    // Off its list, unless a sweeper took it off already (it then leaves the span to us).
    let central = gc.gcCentral(h, Int(s.pointee.spanclass))
    lockAcquire(&central.pointee.lock)
    if s.pointee.list != listNone { gc.gcListRemove(s) }
    lockRelease(&central.pointee.lock)
    h.freeCollectedSpan(s)
    return
  }
  guard let idx = s.slotIndex(a) else { return h.badFree(op, "invalid pointer (interior pointer)", a) }
  if UInt(bitPattern: idx) >= s.highWater {
    return h.badFree(op, "invalid pointer (not allocated by goalloc)", a)
  }
  if let gc, gc.gcIsDead(s, idx) { return h.badFree(op, "double free detected (the collector freed it)", a) }
  if atomicLoad32(&s.pointee.specials) != 0 { gcSpecialsObjectFreed(h, s, a, s.pointee.elemsize) }
  let bit: UInt64 = 1 &<< UInt64(idx & 63)
  if atomicOr64(s.freeWord(idx &>> 6), bit) & bit != 0 { h.badFree(op, "double free detected", a) }
}

// MARK: the API's core

/// goalloc_gc_malloc / goalloc_gc_malloc_noscan.
public func goGCMalloc(_ size: Int, noscan: Bool) -> UnsafeMutableRawPointer? { gcMalloc(size, noscan: noscan) }

/// goalloc_gc_malloc_uncollectable: zeroed malloc memory of a scan class, a root until freed.
public func goGCMallocUncollectable(_ size: Int) -> UnsafeMutableRawPointer? {
  if let h = globalHeap() { _ = h.gcState() }
  return goMalloc(max(size, 1), noscan: false, zero: true, mallocMode: true)
}

/// goalloc_gc_free: frees a collected or uncollectable object now (nil: nothing).
public func goGCFree(_ p: UnsafeMutableRawPointer?) { goFree(p, op: "goalloc_gc_free") }

/// goalloc_gc_realloc: keeps the object's kind (scan, noscan, uncollectable). nil: a new scan
/// object; size 0: frees p and returns nil.
public func goGCRealloc(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
  guard let p else { return gcMalloc(size, noscan: false) }
  guard let h = globalHeap(), let s = h.spanOf(p), atomicLoad32(&s.pointee.state) == spanInUse else {
    return goRealloc(p, size, mallocMode: true)  // (reports a pointer that is not ours)
  }
  if s.pointee.collected == 0 { return goRealloc(p, size, mallocMode: true) }
  if size == 0 {
    goGCFree(p)
    return nil
  }
  let a = UInt(bitPattern: p)
  let old = s.pointee.elemsize
  if !s.isLarge && s.slotIndex(a) != nil && size <= old && size > old / 2 { return p }
  guard let q = gcMalloc(size, noscan: s.spanClass.noscan) else { return nil }
  goalloc_memcpy(q, p, min(old, size))
  if !s.spanClass.noscan { gcBarrierCopied(q, min(old, size)) }  // (a copy the program did not store)
  goGCFree(p)
  return q
}

/// goalloc_gc_base: the start of the object (collected or malloc) whose memory holds p, or nil
/// when p is not in an object of this heap. For a small slot: any slot handed out at some time.
public func goGCBase(_ p: UnsafeRawPointer?) -> UnsafeMutableRawPointer? {
  guard let p, let h = globalHeap(), let s = h.spanOf(p), atomicLoad32(&s.pointee.state) == spanInUse else {
    return nil
  }
  let a = UInt(bitPattern: p)
  if s.isLarge {
    return a < s.pointee.startAddr + UInt(s.pointee.elemsize) ? UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr) : nil
  }
  let idx = s.objIndex(a)
  if idx >= s.pointee.nelems || UInt(bitPattern: idx) >= s.highWater { return nil }
  return UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr + UInt(idx * s.pointee.elemsize))
}
