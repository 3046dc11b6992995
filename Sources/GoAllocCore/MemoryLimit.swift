// MemoryLimit: what a thread's cache does while its heap is near GOALLOC_MEMLIMIT (Go's
// GOMEMLIMIT, which Go meets by collecting sooner; an explicit-free heap can only help spans
// empty and give back what is free). The heap side (when the heap is near its limit, releasing
// a freed span at once, scavenging before growing) is in Scavenger.swift.
//
// Near the limit (MHeap.nearLimit) a cache is *lean*:
//   - its FreeLists are flushed and take no object (each room biased below zero, as in secure
//     mode), so every free goes to its slot's span at once (`freeLean`). A listed object keeps
//     its span from emptying, and a list hands out the slots freed last, which lie in every
//     span of the class, so no span empties; another thread's object goes home, not onto a list.
//   - a ready span whose free slots reach 1/4 of it moves to the class's *sparse* list
//     (placeSparse). A refill takes the ready list first (oldest first, and, unlike a cache far
//     from the limit, passing over no nearly full span: the slot or two they have free would
//     otherwise wait while a fresh span grows the heap), then the newest sparse span (the one that
//     crossed 1/4 last: the fullest, roughly), then the mcentral: allocation gathers in the fuller
//     spans and the sparser ones are left to empty. (Measured on memchurn.c's peak, over the
//     program's own memory: 71.4 MiB with the pass-over and 1/8, 70.8 without the pass-over,
//     70.7 at 1/4 as well (1/16: 70.8; 1/2: 0.6 MiB more than 1/8), CPU time the same. A
//     fullest-first choice over every span, simulated, came out about 2% lower in peak
//     pages than these two lists, and scanning the list at each refill made the run 2.5 times
//     slower; nor did holding back, in the span a refill takes, the free slots of its kernel
//     pages with no object, or under a quarter full, change the peak.)
//   - every span it empties goes back to the mcentral and on to the page heap (none parked),
//     which releases it to the OS at once.
//   - the kernel pages of a sparse span that hold only free slots (or its tail) are released
//     (`releaseFreePages`): all of them when it turns sparse, then those of each slot freed into
//     it (near the limit already, not only over it: 0.1 MiB less at memchurn's peak). A released slot's free mark (word 1) reads zero; a double free of it is
//     then caught by the span's bitmaps instead: at once by a lean owner, else at the owner's next
//     fold or when a list holding it is flushed.
//     Slots of 16..64 B seldom free a whole 4 KiB page; those of 1 KiB and more often do.
// The mode is checked on slow paths only (a refill; a free that finds its list full or closed), so
// the fast paths are unchanged; a lean cache's frees all take the slow path. Leaving the mode (the
// heap fell below 3/4 of its limit) reopens the lists; sparse spans stay on their list and are
// used before the mcentral's spans.
//
// Invariants: lean implies not secure, and then every list is empty with its room
// `secureRoomBias` below the true one; a span on a sparse list has place placeSparse, CACHED set,
// this cache as owner, and counts in readyCounts.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

extension MCache {
  /// Per span class: the sparse list (circular, linked through onext/oprev, owner only).
  @inline(__always) var sparseHeads: UnsafeMutablePointer<SpanPtr?> {
    (raw + MCache.sparseOffset).assumingMemoryBound(to: SpanPtr?.self)
  }

  /// Enters or leaves lean mode to match the heap (slow paths only: one load and compare).
  @inline(__always) func followLimit() {
    if _slowPath(header.pointee.lean != heap.nearLimit) { switchLean() }
  }

  /// Closes the lists (flushed first) near the limit, reopens them after. A secure cache's lists
  /// are closed already and it stays as it is.
  @inline(never)
  func switchLean() {
    let lean = heap.nearLimit
    if header.pointee.secure || header.pointee.lean == lean { return }
    if lean { flushLists() }
    let bias = lean ? -secureRoomBias : secureRoomBias
    for i in MCache.listClasses {
      let l = list(SpanClass(index: i))
      l[ClassGroup.room] = UInt(bitPattern: Int(bitPattern: l[ClassGroup.room]) &+ bias)
    }
    header.pointee.lean = lean
  }

  /// A lean cache's free of handed-out slot idx (address a) of span s, a class with lists: marked
  /// free and recorded in the span's bitmaps (the owner's bit, or home to another thread's span).
  /// A ready span this free leaves at least 1/4 free moves to the sparse list; one it empties
  /// goes back to the mcentral.
  @inline(never)
  func freeLean(_ s: SpanPtr, _ idx: Int, _ a: UInt, op: StaticString) {
    let spc = s.spanClass
    if owns(s) {
      if _slowPath(!s.isUserHeld(idx)) { return heap.badFree(op, "double free detected", a) }
      MCache.setFreeMark(a, key: freeKey)
      let empties = ownerFreeMovesSpan(s)
      ownerFreeChecked(s, idx)  // (s may be gone from this cache when it empties)
      if !empties {
        if s.pointee.place == placeReady
            && s.pointee.allocCount &- Int(truncatingIfNeeded: s.pointee.localFreed)
               <= s.pointee.nelems &- s.pointee.nelems &>> 2 {
          makeSparse(s)
        } else if s.pointee.place == placeSparse {
          releaseFreePages(s, slots: idx, idx)
        }
      }
    } else {
      MCache.setFreeMark(a, key: freeKey)
      if !MCache.freeRemote(heap, self, s, idx, a, op: op) { return }
    }
    countFree(spc)
  }

  /// Moves ready span s to its class's sparse list and releases its free pages.
  func makeSparse(_ s: SpanPtr) {
    let i = Int(s.pointee.spanclass)
    listRemove(readyHeads + i, s)
    listAppend(sparseHeads + i, s)
    s.pointee.place = placeSparse
    releaseFreePages(s, slots: 0, s.pointee.nelems &- 1)
  }

  /// Releases to the OS the kernel pages of span s (owned by this cache, not its current span)
  /// that overlap slots first...last and hold no object: only free slots, or the span's tail.
  /// Nothing when the kernel's pages are larger than the heap's.
  func releaseFreePages(_ s: SpanPtr, slots first: Int, _ last: Int) {
    let ps = goalloc_os_page_size()
    if ps > pageSize { return }
    let size = s.pointee.elemsize, n = s.pointee.nelems, base = s.pointee.startAddr
    var p = first &* size / ps
    let end = min(((last &+ 1) &* size &- 1) / ps, s.pointee.npages &* pageSize / ps &- 1)
    var run = -1  // first page of the current run of releasable pages
    while p <= end {
      let lo = p &* ps / size, hi = min(n &- 1, (p &* ps &+ ps &- 1) / size)
      if lo > hi || !MCache.anyHeld(s, lo, hi) {
        if run < 0 { run = p }
      } else if run >= 0 {
        heap.releaseInSpan(base &+ UInt(run &* ps), (p &- run) &* ps)
        run = -1
      }
      p &+= 1
    }
    if run >= 0 { heap.releaseInSpan(base &+ UInt(run &* ps), (end &+ 1 &- run) &* ps) }
  }

  /// Does span s (owned by this cache) hold an object in slots lo...hi?
  static func anyHeld(_ s: SpanPtr, _ lo: Int, _ hi: Int) -> Bool {
    var w = lo &>> 6
    while w <= hi &>> 6 {
      let a = w == lo &>> 6 ? lo & 63 : 0, b = w == hi &>> 6 ? (hi & 63) &+ 1 : 64
      if s.heldMask(w, bitRange(a, b)) != 0 { return true }
      w &+= 1
    }
    return false
  }

  /// The newest span of class spc's sparse list, folded, with a free slot; nil when there is none.
  func takeSparse(_ spc: SpanClass) -> SpanPtr? {
    let head = sparseHeads + spc.index
    while let first = head.pointee {
      let s = first.pointee.oprev.unsafelyUnwrapped  // Safe: a circular list's head has a prev.
      listRemove(head, s)
      readyCounts[spc.index] &-= 1
      s.fold(heap)
      if s.pointee.allocCount < s.pointee.nelems { return s }
      heap.central(spc).release(s)  // only late-detected double frees leave it full
    }
    return nil
  }
}
