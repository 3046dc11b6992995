// MCentral: the shared pool of spans of one span class (Go's mcentral).
//
// Two lists: `partial` (spans that have free slots, or frees not folded yet) and `full` (spans
// with neither). An mcache whose span is exhausted hands it back (`uncacheSpan`) and asks for
// another (`cacheSpan`): a partial span if there is one (its freed slots are folded in first),
// else a fresh span from the mheap. A free into a span on the full list moves it to partial once,
// on the transition, through `queuePartial`; it is the only time a free takes this lock.
// A span that ends up with no allocated object goes back to the mheap (on uncache, or when the
// mheap reclaims before growing).
//
// Locking: `lock` protects the lists and every uncached span on them; it is never held while
// taking the mheap lock.
import CGoAllocShim

public struct MCentral {
  var _first: UInt64 = 0  // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0
  var spanclass: Int32 = 0
  var partial: SpanPtr? = nil
  var full: SpanPtr? = nil
  var npartial: Int = 0
  var nfull: Int = 0
  var pad: (UInt64, UInt64) = (0, 0)  // one central per cache line
}

let listNone: UInt8 = 0
let listPartial: UInt8 = 1
let listFull: UInt8 = 2

extension UnsafeMutablePointer where Pointee == MCentral {
  func push(_ s: SpanPtr, _ which: UInt8) {
    s.pointee.prev = nil
    s.pointee.list = which
    if which == listPartial {
      s.pointee.next = pointee.partial
      pointee.partial?.pointee.prev = s
      pointee.partial = s
      pointee.npartial += 1
    } else {
      s.pointee.next = pointee.full
      pointee.full?.pointee.prev = s
      pointee.full = s
      pointee.nfull += 1
    }
  }

  func remove(_ s: SpanPtr) {
    if let p = s.pointee.prev { p.pointee.next = s.pointee.next }
    else if s.pointee.list == listPartial { pointee.partial = s.pointee.next }
    else { pointee.full = s.pointee.next }
    s.pointee.next?.pointee.prev = s.pointee.prev
    if s.pointee.list == listPartial { pointee.npartial -= 1 } else { pointee.nfull -= 1 }
    s.pointee.next = nil
    s.pointee.prev = nil
    s.pointee.list = listNone
  }

  /// Files an owned span on the right list, or reports (true) that it holds no object and
  /// must go back to the mheap. Caller holds `lock` and owns `s`.
  func listLocked(_ s: SpanPtr) -> Bool {
    while true {
      let cur = atomicLoad64(&s.pointee.freeState)
      let pending = fsPending(cur)
      if s.pointee.allocCount == 0 && pending == 0 {
        if atomicCAS64(&s.pointee.freeState, cur, 0) { return true }
        continue
      }
      let isPartial = s.pointee.allocCount < s.pointee.nelems || pending > 0
      let new = (cur & ~fsFlags) | (isPartial ? fsPartial : 0)
      if atomicCAS64(&s.pointee.freeState, cur, new) {
        push(s, isPartial ? listPartial : listFull)
        return false
      }
    }
  }

  /// A span with free slots for an mcache, or nil when the heap is out of memory.
  func cacheSpan(_ h: UnsafeMutablePointer<MHeap>) -> SpanPtr? {
    lockAcquire(&pointee.lock)
    while let s = pointee.partial {
      remove(s)
      while true {  // PARTIAL -> CACHED, keeping the pending count
        let cur = atomicLoad64(&s.pointee.freeState)
        if atomicCAS64(&s.pointee.freeState, cur, (cur & ~fsFlags) | fsCached) { break }
      }
      s.fold(h)
      if s.pointee.allocCount < s.pointee.nelems {
        lockRelease(&pointee.lock)
        return s
      }
      if listLocked(s) {  // cannot be empty and full at once; keep the books straight anyway
        lockRelease(&pointee.lock)
        h.freeSpan(s)
        lockAcquire(&pointee.lock)
      }
    }
    lockRelease(&pointee.lock)
    let spc = Int(pointee.spanclass)
    let sc = spc == tinySpanClass ? tinySizeClass : spc >> 1
    guard let s = h.allocSpan(classNPages(sc), spanclass: spc) else { return nil }
    atomicStore64(&s.pointee.freeState, fsCached)
    return s
  }

  /// Takes back a span from an mcache (exhausted, or the cache is being flushed).
  func uncacheSpan(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr) {
    if s.hasUnfoldedFrees { s.fold(h) }
    lockAcquire(&pointee.lock)
    let release = listLocked(s)
    lockRelease(&pointee.lock)
    if release { h.freeSpan(s) }
  }

  /// A free made an unowned span on the full list show pending frees and won the right to
  /// move it (it set PARTIAL). Move it so a cache can find its free slots.
  func queuePartial(_ s: SpanPtr) {
    lockAcquire(&pointee.lock)
    if s.pointee.list == listFull {
      remove(s)
      push(s, listPartial)
    }
    lockRelease(&pointee.lock)
  }

  /// Folds the partial spans' frees and returns the spans left with no object, linked through
  /// `next`, for the caller to give back to the mheap (without this lock).
  func reclaimEmpty(_ h: UnsafeMutablePointer<MHeap>) -> SpanPtr? {
    var out: SpanPtr? = nil
    lockAcquire(&pointee.lock)
    var it = pointee.partial
    while let s = it {
      it = s.pointee.next
      if s.pendingFrees > 0 { s.fold(h) }
      if s.pointee.allocCount == 0 {
        let cur = atomicLoad64(&s.pointee.freeState)
        if fsPending(cur) == 0 && atomicCAS64(&s.pointee.freeState, cur, 0) {
          remove(s)
          s.pointee.next = out
          out = s
        }
      }
    }
    lockRelease(&pointee.lock)
    return out
  }
}
