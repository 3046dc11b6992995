// Weak: weak pointers (Go's weak.Pointer, mheap.go's getOrAddWeakHandle) and bdwgc's
// disappearing links, both specials of their target (MGCSpecials.swift); a cycle clears them in
// MGCSpecialsMark.swift.
//
// goalloc_gc_weak_make(p) returns p's *handle*: a collected noscan word holding p (noscan: it
// never keeps the object alive), one per address (so two weak pointers made from one pointer
// are the same handle and compare equal), kept alive by its special while the object lives.
// The cycle that finds the object unreachable stores 0 in it before any finalizer of the
// object is queued (Go's order: a weak pointer never sees an object that only a finalizer
// resurrected); an explicit free stores 0 too. goalloc_gc_weak_get reads the word: p while the
// object lives, NULL for ever after. A handle is held like any collected pointer (stack,
// globals, collected scan memory, roots); one kept only in malloc memory is not seen and may be
// reused once its object is gone.
// bdwgc's links (GC_general_register_disappearing_link, GC_register_long_link) are the same
// special on the target, writing 0 into the program's word instead of a handle. A short link
// is cleared with the weak handles (before any finalization decision, bdwgc's contract), a long
// one only once the object is freed for good. A link whose own word lies in a collected object
// that dies is dropped with it (bdwgc's dangling links). A link's target that is no collected
// object (uncollectable or malloc memory) is registered but never cleared.
//
// Invariants: a weak special's handle holds its target's address until the special goes;
// a link is registered under one key (its address, | 1 when long) at a time.
import CGoAllocShim

extension UnsafeMutablePointer where Pointee == SpecialsState {
  /// Takes link record r off its target's span list, if it is on one (lock held).
  func detachLink(_ h: UnsafeMutablePointer<MHeap>, _ r: SpecialPtr) {
    if r.pointee.flags & SpecialFlag.attached == 0 { return }
    r.pointee.flags &= ~SpecialFlag.attached
    guard let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), r.pointee.obj), var at = listHead(s) else { return }
    while let q = at.pointee {
      if q == r {
        _ = unlink(s, at)
        releaseIfEmpty(s)
        return
      }
      at = q.link
    }
  }
}

// MARK: weak pointers

/// goalloc_gc_weak_make: p's handle (the same for every call with p), or nil when p is nil,
/// not in a live collected object (one line), or memory ran out.
public func goGCWeakMake(_ p: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  guard let p, let h = globalHeap(), let gc = h.gcState() else { return nil }
  // The handle first, outside the lock: allocating may start a collection (p, an argument, is a
  // root meanwhile).
  guard let cell = gcMalloc(8, noscan: true) else { return nil }
  let a = UInt(bitPattern: p)
  lockAcquire(&gc.pointee.lock)
  var handle: UnsafeMutableRawPointer? = nil
  var used = false
  if let o = collectedObject(h, a) {
    if let sp = specialsCreate() {
      let off = a &- o.span.pointee.startAddr
      if let at = sp.find(o.span, offset: off, kind: SpecialKind.weak) {
        handle = UnsafeMutableRawPointer(bitPattern: at.pointee.unsafelyUnwrapped.pointee.arg)
      } else if let r = sp.newRecord() {
        r.pointee.kind = SpecialKind.weak
        r.pointee.offset = off
        r.pointee.arg = UInt(bitPattern: cell)
        atomicStoreUInt(cell.assumingMemoryBound(to: UInt.self), a)
        if sp.insert(o.span, r) { handle = cell; used = true } else { sp.freeRecord(r) }
      }
    }
  } else {
    writeStatic(2, "goalloc: gc: weak_make: not a pointer into a live collected object; refused\n")
  }
  lockRelease(&gc.pointee.lock)
  if !used { goGCFree(cell) }
  return handle
}

/// goalloc_gc_weak_get: the pointer handle w was made from, or nil once its object is gone.
@inline(__always)
public func goGCWeakGet(_ w: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  guard let w else { return nil }
  return UnsafeMutableRawPointer(bitPattern: atomicLoadUInt(w.assumingMemoryBound(to: UInt.self)))
}

// MARK: bdwgc's disappearing links (Sources/CGoAllocABI/bdwgc_finalize.c)

/// bdwgc's result codes.
let gcSuccess: Int32 = 0, gcDuplicate: Int32 = 1, gcNoMemory: Int32 = 2, gcNotFound: Int32 = 4

/// GC_general_register_disappearing_link (long: GC_register_long_link): *link becomes 0 when
/// obj dies. GC_SUCCESS, GC_DUPLICATE (link registered already: nothing changes), GC_NO_MEMORY.
public func goGCRegisterLink(_ link: UnsafeMutableRawPointer, _ obj: UnsafeRawPointer?, long: Bool) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcState() else { return gcNoMemory }
  let l = UInt(bitPattern: link), t = UInt(bitPattern: obj)
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  guard let sp = specialsCreate() else { return gcNoMemory }
  let key = l | (long ? 1 : 0)
  if sp.linkFind(key) != nil { return gcDuplicate }
  guard let r = sp.newRecord() else { return gcNoMemory }
  r.pointee.kind = SpecialKind.link
  r.pointee.flags = long ? SpecialFlag.long : 0
  r.pointee.arg = l
  r.pointee.obj = t
  if let o = collectedObject(h, t) {
    r.pointee.offset = t &- o.span.pointee.startAddr
    r.pointee.flags |= SpecialFlag.attached
    if !sp.insert(o.span, r) { sp.freeRecord(r); return gcNoMemory }
  }
  if !sp.linkInsert(key, r) {
    sp.detachLink(h, r)
    sp.freeRecord(r)
    return gcNoMemory
  }
  return gcSuccess
}

/// GC_unregister_disappearing_link (long: GC_unregister_long_link): 1 when link was
/// registered, else 0.
public func goGCUnregisterLink(_ link: UnsafeMutableRawPointer?, long: Bool) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcExisting, specialsExisting != nil else { return 0 }
  let key = UInt(bitPattern: link) | (long ? 1 : 0)
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  guard let sp = specialsExisting, let r = sp.linkFind(key) else { return 0 }
  sp.linkRemove(key)
  sp.detachLink(h, r)
  sp.freeRecord(r)
  return 1
}

/// GC_move_disappearing_link (long: GC_move_long_link): GC_SUCCESS, GC_DUPLICATE when newLink
/// is registered (and differs from link), GC_NOT_FOUND when link is not.
public func goGCMoveLink(_ link: UnsafeMutableRawPointer?, _ newLink: UnsafeMutableRawPointer, long: Bool) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcExisting, specialsExisting != nil else { return gcNotFound }
  let bit: UInt = long ? 1 : 0
  let key = UInt(bitPattern: link) | bit, newKey = UInt(bitPattern: newLink) | bit
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  guard let sp = specialsExisting, let r = sp.linkFind(key) else { return gcNotFound }
  if newKey == key { return gcSuccess }
  if sp.linkFind(newKey) != nil { return gcDuplicate }
  sp.linkRemove(key)
  r.pointee.arg = UInt(bitPattern: newLink)
  _ = sp.linkInsert(newKey, r)  // (the removal made room)
  return gcSuccess
}
