// MFinal: finalizers and cleanups (Go's mfinal.go and mcleanup.go): calls made once an object
// is unreachable, and the thread that makes them. Both are specials (MGCSpecials.swift); what a
// cycle decides about them is MGCSpecialsMark.swift.
//
// A finalizer (goalloc_gc_set_finalizer, Go's SetFinalizer): fn(obj, arg) runs once obj is
// unreachable. The cycle that finds it so *resurrects* it (obj and everything it reaches
// survive that cycle); a later cycle frees it unless the finalizer stored it somewhere. One per
// object, unregistered when it is queued. Its referents are roots (Go's markrootSpans), so an
// object reachable from another finalizable object is finalized only once that one is gone,
// and a finalizable object that reaches itself is never finalized (nor freed).
// A cleanup (goalloc_gc_add_cleanup, Go's AddCleanup): fn(arg) runs once the object is
// unreachable for good (after its finalizer, if any, ran and a later cycle found it unreachable
// again). The object is not resurrected and the call never sees it. Any number per object, each
// cancellable until it is queued (goalloc_gc_cancel_cleanup; the handle holds the object's
// address complemented, so it keeps nothing alive).
// `arg` is a root until the call ran, so it must not reach the object: pointing into the object
// is refused with one line; reaching it through other objects keeps the object for ever (as in
// Go). Explicitly freed objects lose their finalizers and cleanups without a call.
// Both run on the *cleanup thread* (started with the first one; registered with the collector;
// never a thread that allocates), one call at a time, in the order cycles queued them. bdwgc's
// finalizers (GC_register_finalizer*) share the records and the ordering but have their own
// queue, run by GC_invoke_finalizers on the calling thread (Sources/CGoAllocABI/bdwgc_finalize.c).
// Queued calls are roots (their object and argument) until they are taken.
//
// Invariants: a record is in exactly one place (a span's list, a queue, or freed once taken);
// `pending` counts the cleanup thread's queue plus the call it is making; all under the
// collector's lock.
import CGoAllocShim

/// The cleanup thread: 0 not started, 1 started (reset in a fork child, and when it leaves).
nonisolated(unsafe) var cleanupThreadState: UInt32 = 0

/// How long the idle cleanup thread sleeps before it checks whether it is the last thread.
let cleanupThreadPollNanos: UInt64 = 1_000_000_000

extension UnsafeMutablePointer where Pointee == SpecialsState {
  /// Queues taken record r (a finalizer with r.obj set, or a cleanup) for its runner. Lock held.
  func enqueue(_ r: SpecialPtr) {
    r.pointee.next = nil
    pointee.queued &+= 1
    if r.pointee.kind == SpecialKind.finalizer && r.pointee.flags & SpecialFlag.bdwgc != 0 {
      if let t = pointee.bdwTail { t.pointee.next = r } else { pointee.bdwHead = r }
      pointee.bdwTail = r
      let c = goalloc_specials_bdwgc_counters()!
      atomicStore32(c, atomicLoad32(c) &+ 1)
      return
    }
    if let t = pointee.runTail { t.pointee.next = r } else { pointee.runHead = r }
    pointee.runTail = r
    atomicAdd64(&pointee.pending, 1)
  }

  /// Takes the oldest record of the cleanup thread's queue (or bdwgc's). Lock held.
  func dequeue(bdwgc: Bool) -> SpecialPtr? {
    if bdwgc {
      guard let r = pointee.bdwHead else { return nil }
      pointee.bdwHead = r.pointee.next
      if pointee.bdwHead == nil { pointee.bdwTail = nil }
      let c = goalloc_specials_bdwgc_counters()!
      atomicStore32(c, atomicLoad32(c) &- 1)
      return r
    }
    guard let r = pointee.runHead else { return nil }
    pointee.runHead = r.pointee.next
    if pointee.runHead == nil { pointee.runTail = nil }
    return r
  }

  /// Wakes the cleanup thread (lock held: the thread reads `wake` under it before sleeping).
  func wakeCleanupThread() {
    atomicStore32(&pointee.wake, atomicLoad32(&pointee.wake) &+ 1)
    goalloc_futex_wake(&pointee.wake, 1)
  }
}

/// Starts the cleanup thread unless it runs (outside every lock: pthread_create allocates).
func startCleanupThread() {
  if atomicLoad32(&cleanupThreadState) != 0 || !atomicCAS32(&cleanupThreadState, 0, 1) { return }
  if goalloc_specials_start_thread(cleanupThreadMain, nil) == 0 {
    atomicStore32(&cleanupThreadState, 0)
    goalloc_write(2, "goalloc: gc: cannot start the cleanup thread (pthread_create failed); cleanups and finalizers wait for the next try\n")
  }
}

/// The cleanup thread: takes one call at a time off the queue and makes it, without the lock.
func cleanupThreadMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  // Registered: while it runs a finalizer, the object is on this stack (a root).
  guard let h = globalHeap(), let gc = h.gcState(), goGCRegisterThread() == 0 else {
    atomicStore32(&cleanupThreadState, 0)
    return nil
  }
  while true {
    if runOneCleanup(gc) { continue }
    lockAcquire(&gc.pointee.lock)
    guard let sp = specialsExisting else {  // (started only once it exists)
      lockRelease(&gc.pointee.lock)
      atomicStore32(&cleanupThreadState, 0)
      return nil
    }
    if sp.pointee.runHead != nil {
      lockRelease(&gc.pointee.lock)
      continue
    }
    let seen = atomicLoad32(&sp.pointee.wake)
    lockRelease(&gc.pointee.lock)
    // The calls' frames lie below this one: no object they saw stays reachable from a stale slot
    // while this thread sleeps.
    goalloc_specials_clear_stack()
    goalloc_specials_wait(&sp.pointee.wake, seen, cleanupThreadPollNanos)
    // The program's threads are all gone (its main thread left by pthread_exit): leave too,
    // or this thread alone would keep the process alive.
    if atomicLoad32(&sp.pointee.wake) == seen && goalloc_only_live_thread() != 0 {
      atomicStore32(&cleanupThreadState, 0)
      return nil
    }
  }
}

/// Makes the oldest queued call, if any (its own frame: the object's address does not stay
/// behind in the loop's). True when it made one.
@inline(never)
func runOneCleanup(_ gc: UnsafeMutablePointer<GCState>) -> Bool {
  lockAcquire(&gc.pointee.lock)
  guard let sp = specialsExisting, let r = sp.dequeue(bdwgc: false) else {
    lockRelease(&gc.pointee.lock)
    return false
  }
  let kind = r.pointee.kind, fn = r.pointee.fn
  let obj = UnsafeMutableRawPointer(bitPattern: r.pointee.obj), arg = UnsafeMutableRawPointer(bitPattern: r.pointee.arg)
  sp.freeRecord(r)
  lockRelease(&gc.pointee.lock)
  if let fn {
    if kind == SpecialKind.finalizer { goalloc_specials_call_finalizer(fn, obj, arg) } else { goalloc_specials_call_cleanup(fn, arg) }
  }
  lockAcquire(&gc.pointee.lock)
  sp.pointee.ran &+= 1
  lockRelease(&gc.pointee.lock)
  atomicAdd64(&sp.pointee.pending, UInt64.max)  // - 1
  return true
}

/// In a fork child (one thread, locks free): no cleanup thread runs here, the next finalizer or
/// cleanup starts one; a call the parent's thread was making is not pending here.
func specialsForkChild() {
  atomicStore32(&cleanupThreadState, 0)
  guard let sp = specialsExisting else { return }
  var n: UInt64 = 0
  var q = sp.pointee.runHead
  while let r = q { n += 1; q = r.pointee.next }
  atomicStore64(&sp.pointee.pending, n)
}

/// Refusals of the API, one line each.
private func refuse(_ line: StaticString) -> Int32 {
  writeStatic(2, line)
  return -1
}

// MARK: the API's core

/// goalloc_gc_set_finalizer: fn(p, arg) once p (the start of a collected object) is
/// unreachable; fn nil removes p's finalizer. 0; -1 with one line when p is not the start of a
/// live collected object, already has a finalizer, or arg points into it.
public func goGCSetFinalizer(_ p: UnsafeMutableRawPointer?, _ fn: UnsafeRawPointer?, _ arg: UnsafeMutableRawPointer?) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcState() else { return -1 }
  lockAcquire(&gc.pointee.lock)
  let r = setFinalizerLocked(h, UInt(bitPattern: p), fn, UInt(bitPattern: arg))
  lockRelease(&gc.pointee.lock)
  if r == 0 && fn != nil { startCleanupThread() }
  return r
}

private func setFinalizerLocked(_ h: UnsafeMutablePointer<MHeap>, _ a: UInt, _ fn: UnsafeRawPointer?, _ b: UInt) -> Int32 {
  guard let o = collectedObject(h, a), o.base == a else {
    return refuse("goalloc: gc: set_finalizer: not the start of a live collected object; ignored\n")
  }
  guard let sp = specialsCreate() else { return -1 }
  let off = a &- o.span.pointee.startAddr
  if let at = sp.find(o.span, offset: off, kind: SpecialKind.finalizer) {
    if fn != nil { return refuse("goalloc: gc: set_finalizer: the object already has a finalizer (remove it with fn NULL first); ignored\n") }
    sp.freeRecord(sp.unlink(o.span, at))
    sp.releaseIfEmpty(o.span)
    return 0
  }
  guard let fn else { return 0 }
  if b >= o.base && b < o.base &+ UInt(o.span.pointee.elemsize) {
    return refuse("goalloc: gc: set_finalizer: arg points into the object, which would keep it reachable for ever (the finalizer would never run); ignored\n")
  }
  guard let r = sp.newRecord() else { return -1 }
  r.pointee.kind = SpecialKind.finalizer
  r.pointee.flags = SpecialFlag.orderGo
  r.pointee.offset = off
  r.pointee.fn = fn
  r.pointee.arg = b
  if !sp.insert(o.span, r) { sp.freeRecord(r); return -1 }
  return 0
}

/// goalloc_gc_add_cleanup: fn(arg) once the collected object holding p is unreachable for
/// good. Returns the cancel handle (id, ~p); id 0 with one line when p is not in a live
/// collected object or arg points into it (and without one for fn nil or out of memory).
public func goGCAddCleanup(_ p: UnsafeMutableRawPointer?, _ fn: UnsafeRawPointer?,
                           _ arg: UnsafeMutableRawPointer?) -> (id: UInt64, hidden: UInt) {
  guard let fn, let h = globalHeap(), let gc = h.gcState() else { return (0, 0) }
  let a = UInt(bitPattern: p)
  lockAcquire(&gc.pointee.lock)
  let id = addCleanupLocked(h, a, fn, UInt(bitPattern: arg))
  lockRelease(&gc.pointee.lock)
  if id == 0 { return (0, 0) }
  startCleanupThread()
  return (id, ~a)
}

private func addCleanupLocked(_ h: UnsafeMutablePointer<MHeap>, _ a: UInt, _ fn: UnsafeRawPointer, _ b: UInt) -> UInt64 {
  guard let o = collectedObject(h, a) else {
    _ = refuse("goalloc: gc: add_cleanup: not a pointer into a live collected object; refused\n")
    return 0
  }
  if b >= o.base && b < o.base &+ UInt(o.span.pointee.elemsize) {
    _ = refuse("goalloc: gc: add_cleanup: arg points into the object, which would keep it reachable for ever (the cleanup would never run); refused\n")
    return 0
  }
  guard let sp = specialsCreate(), let r = sp.newRecord() else { return 0 }
  sp.pointee.nextID &+= 1
  r.pointee.kind = SpecialKind.cleanup
  r.pointee.offset = a &- o.span.pointee.startAddr
  r.pointee.fn = fn
  r.pointee.arg = b
  r.pointee.id = sp.pointee.nextID
  if !sp.insert(o.span, r) { sp.freeRecord(r); return 0 }
  return r.pointee.id
}

/// goalloc_gc_cancel_cleanup: removes the cleanup of handle (id, hidden) if it is not queued
/// yet. 1 when removed, 0 otherwise (already queued or run, cancelled, or never added).
public func goGCCancelCleanup(_ id: UInt64, _ hidden: UInt) -> Int32 {
  guard id != 0, let h = globalHeap(), let gc = h.gcExisting else { return 0 }
  let a = ~hidden
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  guard let sp = specialsExisting, let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), a),
        s.pointee.collected != 0, atomicLoad32(&s.pointee.state) == spanInUse, var at = sp.listHead(s) else { return 0 }
  let off = a &- s.pointee.startAddr
  while let q = at.pointee, q.pointee.offset <= off {
    if q.pointee.offset == off && q.pointee.kind == SpecialKind.cleanup && q.pointee.id == id {
      sp.freeRecord(sp.unlink(s, at))
      sp.releaseIfEmpty(s)
      return 1
    }
    at = q.link
  }
  return 0
}

/// goalloc_gc_cleanups_pending: cleanups and finalizers queued for the cleanup thread or
/// running on it.
public func goGCCleanupsPending() -> Int {
  guard let sp = specialsExisting else { return 0 }
  return Int(atomicLoad64(&sp.pointee.pending))
}

// MARK: bdwgc's finalizers (Sources/CGoAllocABI/bdwgc_finalize.c)

/// GC_register_finalizer and its variants (`order`: SpecialFlag.orderAfterLinks, ignoreSelf or
/// noOrder): replaces p's finalizer (fn nil: removes it); the old one's fn and cd go to ofn and
/// ocd (nil, nil when there was none or p is not the start of a collected object, in which case
/// fn is ignored). Out of memory: nothing changes, ofn and ocd are not written.
public func goGCBdwgcRegisterFinalizer(_ p: UnsafeMutableRawPointer?, _ fn: UnsafeRawPointer?,
                                       _ cd: UnsafeMutableRawPointer?, _ order: UInt8,
                                       _ ofn: UnsafeMutablePointer<UnsafeRawPointer?>?,
                                       _ ocd: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
  var oldFn: UnsafeRawPointer? = nil
  var oldCd: UnsafeMutableRawPointer? = nil
  if let h = globalHeap(), let gc = h.gcState() {
    let a = UInt(bitPattern: p)
    lockAcquire(&gc.pointee.lock)
    if let o = collectedObject(h, a), o.base == a {
      guard let sp = specialsCreate() else { lockRelease(&gc.pointee.lock); return }
      let off = a &- o.span.pointee.startAddr
      if let at = sp.find(o.span, offset: off, kind: SpecialKind.finalizer) {
        let r = at.pointee.unsafelyUnwrapped
        oldFn = r.pointee.fn
        oldCd = UnsafeMutableRawPointer(bitPattern: r.pointee.arg)
        if let fn {
          r.pointee.fn = fn
          r.pointee.arg = UInt(bitPattern: cd)
          r.pointee.flags = SpecialFlag.bdwgc | order
        } else {
          sp.freeRecord(sp.unlink(o.span, at))
          sp.releaseIfEmpty(o.span)
        }
      } else if let fn {
        guard let r = sp.newRecord() else { lockRelease(&gc.pointee.lock); return }
        r.pointee.kind = SpecialKind.finalizer
        r.pointee.flags = SpecialFlag.bdwgc | order
        r.pointee.offset = off
        r.pointee.fn = fn
        r.pointee.arg = UInt(bitPattern: cd)
        if !sp.insert(o.span, r) { sp.freeRecord(r); lockRelease(&gc.pointee.lock); return }
      }
    }
    lockRelease(&gc.pointee.lock)
  }
  ofn?.pointee = oldFn
  ocd?.pointee = oldCd
}

/// GC_invoke_finalizers' step: takes the oldest finalizer queued for bdwgc's layer into fn,
/// obj, cd. 1 when there was one, else 0.
public func goGCBdwgcTakeFinalizer(_ fn: UnsafeMutablePointer<UnsafeRawPointer?>,
                                   _ obj: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                   _ cd: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int32 {
  guard let h = globalHeap(), let gc = h.gcExisting, specialsExisting != nil else { return 0 }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  guard let sp = specialsExisting, let r = sp.dequeue(bdwgc: true) else { return 0 }
  fn.pointee = r.pointee.fn
  obj.pointee = UnsafeMutableRawPointer(bitPattern: r.pointee.obj)
  cd.pointee = UnsafeMutableRawPointer(bitPattern: r.pointee.arg)
  sp.pointee.ran &+= 1
  sp.freeRecord(r)
  return 1
}
