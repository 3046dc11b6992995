// MGCSpecialsMark: what a cycle does with specials (MGCSpecials.swift), at mark termination:
// after the mark, before the sweep, the world stopped and the collector's lock and every
// allocator lock held (Go spreads this over markrootSpans and the sweeper; stage 1 has it in
// one place, so a lazy sweep never meets a special of a dead object). In order:
//   1. roots: every finalizer's and cleanup's argument, every weak handle (kept while its
//      object lives), the referents (not the object) of every object with a Go-style
//      finalizer, and every queued call's object and argument; then the mark is drained;
//   2. weak handles and short links of unmarked objects are cleared (before any finalization
//      decision: Go's weak package and bdwgc's links agree on that);
//   3. the referents of unmarked objects with bdwgc's ordered finalizers are marked (with
//      ignore_self, words pointing into the object itself are skipped);
//   4. every finalizer whose object is still unmarked is queued, and then each such object is
//      marked and scanned: resurrected for its finalizer, with everything it reaches;
//   5. objects still unmarked are dead for good: their cleanups are queued and their long links
//      cleared; a link whose own word lies in a dead collected object is dropped;
//   6. the cleanup thread is woken, bdwgc's cycle counter (its notifier's trigger) bumped.
// Ordering that follows: an object reachable from a finalizable object is marked by step 1 or 3
// and finalized only once that one is gone; a finalizable object that reaches itself is never
// finalized (bdwgc's ignore_self excepted for direct self-pointers); no_order finalizers of
// objects that reach each other all run in the same cycle. A cleanup never runs while its
// object can still be reached, even from a finalizer: finalizers go first.
// Cost: nothing unless some special was ever set; then one pass over the spans that have
// specials per step that some kind present needs (cleanups only: steps 1 and 5), and one over
// the link index when there are links.
import CGoAllocShim

extension UnsafeMutablePointer where Pointee == GCState {
  /// Mark termination's work on specials (MGC.gcCycle, right after gcMark).
  func gcMarkSpecials(_ h: UnsafeMutablePointer<MHeap>) {
    guard let sp = specialsExisting else { return }
    if sp.pointee.spans == 0 && sp.pointee.nlinks == 0 && sp.pointee.runHead == nil && sp.pointee.bdwHead == nil { return }
    let check = h.debugFlags & UInt32(GOALLOC_DEBUG_CLEANUP_CHECK) != 0
    markSpecialRoots(h, sp, cleanupArgs: !check)
    drainAll(h)
    if check { checkCleanupArgs(h, sp) }
    if sp.pointee.weaks > 0 { clearWeak(h, sp) }
    let run = sp.pointee.runTail, bdw = sp.pointee.bdwTail
    if sp.pointee.finalizers > 0 {
      markOrderedReferents(h, sp)
      drainAll(h)
      queueFinalizers(h, sp)
      drainAll(h)
    }
    if sp.pointee.cleanups > 0 || sp.pointee.weaks > 0 { queueCleanups(h, sp) }
    if sp.pointee.nlinks > 0 { dropDanglingLinks(h, sp) }
    if sp.pointee.runTail != run { sp.wakeCleanupThread() }
    if sp.pointee.bdwTail != bdw {
      let c = goalloc_specials_bdwgc_counters()! + 1
      atomicStore32(c, atomicLoad32(c) &+ 1)
    }
  }

  /// Greys v if it may point into the heap.
  @inline(__always) func greyWord(_ h: UnsafeMutablePointer<MHeap>, _ v: UInt) {
    let m = marker0
    if v >= m.pointee.heapLo && v < m.pointee.heapHi { m.grey(v) }
  }

  /// Step 1 (without the arguments of registered cleanups for the cleanup check).
  func markSpecialRoots(_ h: UnsafeMutablePointer<MHeap>, _ sp: UnsafeMutablePointer<SpecialsState>, cleanupArgs: Bool) {
    var walk = SpecialRecords(sp)
    while let (s, r) = walk.next() {
      switch r.pointee.kind {
      case SpecialKind.finalizer:
        greyWord(h, r.pointee.arg)
        if r.pointee.flags & SpecialFlag.orderMask == SpecialFlag.orderGo && !s.spanClass.noscan {
          let o = s.object(r.pointee.offset)
          marker0.scanRange(o.base, o.base &+ UInt(s.pointee.elemsize))
        }
      case SpecialKind.cleanup: if cleanupArgs { greyWord(h, r.pointee.arg) }
      case SpecialKind.weak: greyWord(h, r.pointee.arg)
      default: break
      }
    }
    var q = sp.pointee.runHead
    while let r = q {
      q = r.pointee.next
      greyWord(h, r.pointee.obj)
      greyWord(h, r.pointee.arg)
    }
    q = sp.pointee.bdwHead
    while let r = q {
      q = r.pointee.next
      greyWord(h, r.pointee.obj)
      greyWord(h, r.pointee.arg)
    }
  }

  /// GOALLOC_DEBUG=cleanupcheck=1, the rest of step 1 (Go's GODEBUG=checkfinalizers, for
  /// cleanups): the objects with cleanups still unmarked once everything but the cleanups'
  /// arguments is marked are noted; the arguments are marked; a noted object marked now is kept
  /// only by cleanup arguments (its own or another's), so its cleanups can never run: one line
  /// each, once per record.
  func checkCleanupArgs(_ h: UnsafeMutablePointer<MHeap>, _ sp: UnsafeMutablePointer<SpecialsState>) {
    for pass in 0..<3 {  // note the unmarked, mark the arguments, look again
      var walk = SpecialRecords(sp)
      while let (s, r) = walk.next() {
        if r.pointee.kind != SpecialKind.cleanup { continue }
        let o = s.object(r.pointee.offset)
        if pass == 0 {
          if !s.isMarked(o.index) && r.pointee.flags & SpecialFlag.reported == 0 { r.pointee.flags |= SpecialFlag.suspect }
        } else if pass == 1 {
          greyWord(h, r.pointee.arg)
        } else if r.pointee.flags & SpecialFlag.suspect != 0 {
          r.pointee.flags &= ~SpecialFlag.suspect
          if s.isMarked(o.index) {
            r.pointee.flags |= SpecialFlag.reported
            report("gc: cleanupcheck", "an object with a cleanup is reachable only from cleanup arguments (its cleanups can never run)", o.base)
          }
        }
      }
      if pass == 1 { drainAll(h) }
    }
  }

  /// Step 2.
  func clearWeak(_ h: UnsafeMutablePointer<MHeap>, _ sp: UnsafeMutablePointer<SpecialsState>) {
    var spans = SpecialSpans(sp)
    while let (s, _) = spans.next() {
      guard var at = sp.listHead(s) else { continue }
      while let r = at.pointee {
        let k = r.pointee.kind
        let short = k == SpecialKind.weak || (k == SpecialKind.link && r.pointee.flags & SpecialFlag.long == 0)
        if short && !s.isMarked(s.object(r.pointee.offset).index) {
          sp.dropWeak(sp.unlink(s, at))
          sp.pointee.cleared &+= 1
        } else {
          at = r.link
        }
      }
      sp.releaseIfEmpty(s)
    }
  }

  /// Step 3.
  func markOrderedReferents(_ h: UnsafeMutablePointer<MHeap>, _ sp: UnsafeMutablePointer<SpecialsState>) {
    var walk = SpecialRecords(sp)
    while let (s, r) = walk.next() {
      if s.spanClass.noscan || r.pointee.kind != SpecialKind.finalizer { continue }
      let order = r.pointee.flags & SpecialFlag.orderMask
      if order != SpecialFlag.orderAfterLinks && order != SpecialFlag.ignoreSelf { continue }
      let o = s.object(r.pointee.offset)
      if s.isMarked(o.index) { continue }
      let end = o.base &+ UInt(s.pointee.elemsize)
      if order == SpecialFlag.orderAfterLinks {
        marker0.scanRange(o.base, end)
        continue
      }
      var p = o.base
      while p < end {
        let v = UnsafePointer<UInt>(bitPattern: p).unsafelyUnwrapped.pointee
        if v < o.base || v >= end { greyWord(h, v) }
        p &+= 8
      }
    }
  }

  /// Step 4.
  func queueFinalizers(_ h: UnsafeMutablePointer<MHeap>, _ sp: UnsafeMutablePointer<SpecialsState>) {
    var fresh: SpecialPtr? = nil, last: SpecialPtr? = nil
    var spans = SpecialSpans(sp)
    while let (s, _) = spans.next() {
      guard var at = sp.listHead(s) else { continue }
      while let r = at.pointee {
        if r.pointee.kind != SpecialKind.finalizer { at = r.link; continue }
        let o = s.object(r.pointee.offset)
        if s.isMarked(o.index) { at = r.link; continue }
        _ = sp.unlink(s, at)
        r.pointee.obj = o.base
        if let l = last { l.pointee.next = r } else { fresh = r }
        last = r
      }
      sp.releaseIfEmpty(s)
    }
    // All of them decided, now resurrected (no_order: none of them keeps another from it).
    var q = fresh
    while let r = q {
      q = r.pointee.next
      marker0.grey(r.pointee.obj)
      sp.enqueue(r)
    }
  }

  /// Step 5.
  func queueCleanups(_ h: UnsafeMutablePointer<MHeap>, _ sp: UnsafeMutablePointer<SpecialsState>) {
    var spans = SpecialSpans(sp)
    while let (s, _) = spans.next() {
      guard var at = sp.listHead(s) else { continue }
      while let r = at.pointee {
        if s.isMarked(s.object(r.pointee.offset).index) { at = r.link; continue }
        _ = sp.unlink(s, at)
        switch r.pointee.kind {
        case SpecialKind.cleanup: sp.enqueue(r)
        case SpecialKind.link:
          sp.dropWeak(r)
          sp.pointee.cleared &+= 1
        default: sp.freeRecord(r)  // (none: steps 2 and 4 took them)
        }
      }
      sp.releaseIfEmpty(s)
    }
  }

  /// Step 5, links whose own word lies in a collected object that died: dropped, not written.
  func dropDanglingLinks(_ h: UnsafeMutablePointer<MHeap>, _ sp: UnsafeMutablePointer<SpecialsState>) {
    var i = 0
    while i < sp.pointee.linkCapacity {
      guard let r = sp.linkRecord(at: i), inDeadObject(h, r.pointee.arg) else {
        i += 1
        continue
      }
      // Removal shifts later entries back into slot i: look at it again.
      sp.linkRemove(sp.linkKey(r))
      sp.detachLink(h, r)
      sp.freeRecord(r)
    }
  }
}

/// Whether address a lies in a collected object that this cycle found dead (unmarked), or freed
/// explicitly (small objects: a freed slot is never marked).
func inDeadObject(_ h: UnsafeMutablePointer<MHeap>, _ a: UInt) -> Bool {
  guard let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), a), s.pointee.collected != 0,
        atomicLoad32(&s.pointee.state) == spanInUse else { return false }
  if s.isLarge { return a < s.pointee.startAddr &+ UInt(s.pointee.elemsize) && !s.isMarked(0) }
  let idx = s.objIndex(a)
  return idx < s.pointee.nelems && UInt(bitPattern: idx) < s.highWater && !s.isMarked(idx)
}

extension UnsafeMutablePointer where Pointee == MSpan {
  /// The object holding the byte at `offset` of this span: its slot index and start.
  @inline(__always) func object(_ offset: UInt) -> (index: Int, base: UInt) {
    if isLarge { return (0, pointee.startAddr) }
    let idx = objIndex(pointee.startAddr &+ offset)
    return (idx, pointee.startAddr &+ UInt(idx &* pointee.elemsize))
  }
}
