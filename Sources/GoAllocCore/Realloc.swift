// Realloc: resizing an object, and the size of an object (glibc's realloc and
// malloc_usable_size contracts). See Malloc.swift for an overview.
//
// A block stays where it is while the new size fits its slot without wasting more than half of
// it; a large block grows or shrinks in place when its neighbouring pages allow (MHeap
// .resizeLarge); else it moves geometrically (a growing buffer moves O(log n) times). An object
// keeps its kind when it moves: the new block has the old span class's noscan-ness.
import CGoAllocShim

/// Bytes usable at p (the slot size, or the large span's size); 0 for tiny sub-objects, whose
/// extent is not recorded. Reports (and returns 0 for) pointers that are not live objects.
public func usableSize(_ p: UnsafeRawPointer?, op: StaticString = "malloc_usable_size") -> Int {
  guard let p, let h = globalHeap(), let s = liveObjectSpan(h, UInt(bitPattern: p), op: op) else { return 0 }
  return s.spanClass.isTiny ? 0 : s.pointee.elemsize
}

/// The in-use span of the object that starts at a, or nil after reporting a pointer that is not
/// the start of an object of ours.
func liveObjectSpan(_ h: UnsafeMutablePointer<MHeap>, _ a: UInt, op: StaticString) -> SpanPtr? {
  // The flat table of the window first (one load, as free finds spans), else the arena index.
  let span = goalloc_span_lookup(a)?.assumingMemoryBound(to: MSpan.self)
  guard let s = span ?? spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), a),
        atomicLoad32(&s.pointee.state) == spanInUse else {
    h.badFree(op, "invalid pointer (not allocated by goalloc)", a)
    return nil
  }
  let start = s.isLarge ? a == s.pointee.startAddr : s.spanClass.isTiny || s.slotIndex(a) != nil
  if !start {
    h.badFree(op, "invalid pointer (interior pointer)", a)
    return nil
  }
  return s
}

/// C realloc semantics (glibc): nil -> malloc; size 0 -> free and nil; in place when the new
/// size still fits the slot without wasting more than half of it. A moved object keeps its kind
/// (the noscan-ness of its span class: see SpanClass); `noscan` is the kind of a new one (p nil).
func reallocObject(_ p: UnsafeMutableRawPointer?, _ size: Int, noscan: Bool = true, mallocMode: Bool)
  -> UnsafeMutableRawPointer?
{
  guard let p else { return mallocgc(size, noscan: noscan, zero: false, mallocMode: mallocMode) }
  if size == 0 {
    freeObject(p, op: "realloc")
    return nil
  }
  if size < 0 || size > maxAllocSize { return enomem() }
  guard let h = globalHeap(), let s = liveObjectSpan(h, UInt(bitPattern: p), op: "realloc") else { return nil }
  let old = s.spanClass.isTiny ? 0 : s.pointee.elemsize
  if old == 0 { return nil }  // a tiny object: its extent is not recorded
  let noscan = s.spanClass.noscan
  // Fits: stay in place unless that would waste more than half of the block (a large block keeps
  // the headroom a geometric move gave it; trimming it would cost the next growth a move).
  if size <= old && (size > old / 2 || old <= 16) {
    recordInPlace(h, p, size, sizeclass: old <= maxSmallSize ? sizeToClass(old, mallocMode: mallocMode) : 0)
    return p
  }
  // Large to large: resize the span in place when its neighbours allow.
  if old > maxSmallSize && size > maxSmallSize {
    let npages = (size + pageSize - 1) >> pageShift
    let oldPages = s.pointee.npages
    if h.resizeLarge(s, to: npages) {
      if npages > oldPages { atomicAdd64(&h.pointee.largeAllocBytes, UInt64((npages - oldPages) * pageSize)) }
      else { atomicAdd64(&h.pointee.largeFreeBytes, UInt64((oldPages - npages) * pageSize)) }
      recordInPlace(h, p, size, sizeclass: 0)
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
  guard let q = mallocgc(min(newSize, maxAllocSize), noscan: noscan, zero: false, mallocMode: mallocMode)
          ?? (newSize != size ? mallocgc(size, noscan: noscan, zero: false, mallocMode: mallocMode) : nil)
  else { return nil }
  goalloc_memcpy(q, p, min(old, size))
  // A large block grown away from is not wanted again at its size: its pages go straight back
  // to the page heap (where a neighbour may grow into them), not to the LargeBins or the
  // LargeCache. (With a
  // fast-path cache only: otherwise the free must be recorded, through freeObject.)
  if s.isLarge, goalloc_tls_get() != nil {
    freeLarge(h, s, UInt(bitPattern: p), op: "realloc", keep: false)
  } else {
    freeObject(p, op: "realloc")
  }
  return q
}

/// A realloc that kept the block where it is: traced as a free and an allocation (instrumented
/// mode, where no thread has a fast-path cache).
@inline(__always)
func recordInPlace(_ h: UnsafeMutablePointer<MHeap>, _ p: UnsafeMutableRawPointer, _ size: Int, sizeclass: Int) {
  if _slowPath(goalloc_tls_get() == nil), h.instrumented, let c = currentCache() {
    h.recordFree(UInt(bitPattern: p))
    h.recordAlloc(c, UInt(bitPattern: p), size: size, sizeclass: sizeclass, slot: 0)
  }
}

/// realloc with glibc's contract.
public func goRealloc(_ p: UnsafeMutableRawPointer?, _ size: Int, mallocMode: Bool) -> UnsafeMutableRawPointer? {
  reallocObject(p, size, mallocMode: mallocMode)
}
