// FreeList: each mcache's per-span-class LIFO of objects its thread freed (tcmalloc's thread
// cache, in front of Go's bitmaps). A malloc takes the most recently freed object of its class
// (hot in the cache; a steady loop touches one slot per class); a free pushes onto the list,
// whichever thread allocated the object, with no atomics and no bitmap access. When a list is
// full, half of it is *flushed* through the bitmap free path (MSpan: the owner's local bits, or
// the remote atomics for another thread's span), so spans still empty and go back to the heap.
//
// A slot of a list-eligible class is in one of four states, told apart without the bitmaps:
//   never handed out   slot index >= span.highWater
//   handed out         below highWater; word 1 holds no mark (cleared when handed out)
//   listed             word 0: the next listed object; word 1: freeKey + its depth (1...limit)
//   free in the bitmap word 1: freeKey (written by whoever frees it there)
// so a free is checked with one subtraction and compare: a listed or free slot is a double free,
// a slot above highWater a wild pointer. The depth makes the list's length the head's word 1:
// push and pop update no counter (a read-modify-write of one location on both would chain every
// malloc to the previous free).
//
// A list's head lives in the class's counter group of the cache (MCache), which doubles as the
// list's sentinel: an empty list's head is the group itself, whose word 1 is freeKey (depth 0);
// word 5 is freeKey + limit.
//
// Invariants:
//   - a listed object is allocated in its span's bitmaps (the list caches allocated slots), so
//     its span is neither freed nor folded over it while it is listed;
//   - depths run limit >= head > ... > last == 1; only the owning thread touches its lists;
//   - classes of 16 B and up only (an 8 B slot has no word 1), never tiny or large;
//   - a thread's lists are flushed when it exits and by goReleaseFreeMemory (its own); a GC mode
//     must flush every list before it marks (as Go flushes mcaches).
import CGoAllocShim

extension MCache {
  /// Objects a list may hold: about 32 KiB of objects, 4 to 256.
  @inline(__always) static func listLimit(_ spc: Int) -> Int {
    min(256, max(4, 32768 / classSize(spc &>> 1)))
  }
  /// Word 1 of a listed object is at most freeKey + maxListDepth.
  static let maxListDepth: UInt = 256
  /// The span classes with lists: 16 B slots and up (class 2), not tiny.
  static let listClasses = 4..<tinySpanClass
  @inline(__always) @usableFromInline static func hasList(_ spc: Int) -> Bool {
    UInt(bitPattern: spc &- listClasses.lowerBound) < UInt(listClasses.count)
  }

  /// Span class spc's list: its head (word 0), freeKey (word 1, as a sentinel of depth 0) and
  /// freeKey + limit (word 5), in the class's counter group.
  @inline(__always) @usableFromInline func list(_ spc: Int) -> UnsafeMutablePointer<UInt> {
    (raw + MCache.countersOffset).assumingMemoryBound(to: UInt.self) + MCache.listIdx(spc)
  }

  /// The heap's key (each list's sentinel holds it too: the fast paths read it there).
  var freeKey: UInt { heap.pointee.freeKey }
  /// Word 1 marks a listed or bitmap-free slot (key + 0...256; key: the heap's freeKey, also word
  /// 1 of every list's sentinel).
  @inline(__always) @usableFromInline static func isFreeMark(_ w1: UInt, key: UInt) -> Bool {
    w1 &- key <= maxListDepth
  }
  /// A slot of class spc handed out from the bitmaps: word 1 may hold the free mark.
  @inline(__always) @usableFromInline static func clearFreeMark(_ spc: Int, _ p: UInt) {
    // Safe: slots of 16 B or more. (One compare, not hasList's two: a tiny block, the one class
    // above the lists, is zeroed whole when handed out anyway.)
    if spc >= listClasses.lowerBound { UnsafeMutablePointer<UInt>(bitPattern: p).unsafelyUnwrapped[1] = 0 }
  }

  func initLists() {
    let key = freeKey
    for spc in 0..<numSpanClasses {
      let l = list(spc)
      l[0] = UInt(bitPattern: l)
      l[1] = key
      l[5] = MCache.hasList(spc) ? key &+ UInt(MCache.listLimit(spc)) : 0
    }
  }

  /// Objects on class spc's list.
  @inline(__always) func listLength(_ spc: Int) -> Int {
    let l = list(spc)
    // Safe: the head is a listed object or the group itself, both with a word 1.
    return Int(bitPattern: UnsafePointer<UInt>(bitPattern: l[0]).unsafelyUnwrapped[1] &- l[1])
  }

  /// The most recently freed object of class spc, off the list (counted as a malloc by the
  /// caller); 0 when the list is empty.
  @inline(__always) @usableFromInline func listPop(_ spc: Int) -> UInt {
    let l = list(spc)
    let p = l.pointee
    if _slowPath(p == UInt(bitPattern: l)) { return 0 }
    let o = UnsafeMutablePointer<UInt>(bitPattern: p).unsafelyUnwrapped  // Safe: a listed object.
    l.pointee = o.pointee
    o[1] = 0
    return p
  }

  /// Pushes object a (checked by the caller: a handed-out slot); false when the list is full.
  /// The caller counts the free.
  @inline(__always) @usableFromInline func listPush(_ l: UnsafeMutablePointer<UInt>, _ a: UInt) -> Bool {
    let h = l[0]
    // Safe: the head is a listed object or the group itself, both with a word 1.
    let depth = UnsafePointer<UInt>(bitPattern: h).unsafelyUnwrapped[1] &+ 1
    if _slowPath(depth > l[5]) { return false }
    let o = UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped  // Safe: a is a slot.
    o[0] = h
    o[1] = depth
    l[0] = a
    return true
  }

  /// Slot 0 of span s (class spc, this cache's current span) was just handed out from the
  /// bitmaps, and the class's list is empty: list it and the slots after it up to the class's
  /// *colour*, and hand out that one instead. Spans start on page boundaries, so without this
  /// the first object of every class sits at the start of a page: a program that keeps one
  /// object of each of 20-odd classes in use (pairmix) finds them all in one set of the 8-way
  /// L1 cache (pairmix under cachegrind: 0.63 D1 misses per pair; 0.002 with colours). The
  /// colour stays within the first 4 KiB (no extra page touched).
  @inline(never)
  func colourFirstSlot(_ spc: Int, _ s: SpanPtr, _ p: UInt) -> UInt {
    let sc = spc &>> 1
    let size = classSize(sc)
    if size > 2048 { return p }
    // Skip to about cache line (sc * 11) mod 64 of the page.
    let k = min(((sc &* 11) & 63) &* 64 / size, (4096 - size) / size, MCache.listLimit(spc) - 1, 63)
    let l = list(spc)
    var q = p
    for _ in 0..<k {
      if !listPush(l, q) { break }
      guard let next = s.nextFreeFast() else { return listPop(spc) }  // q again
      q = next
    }
    MCache.clearFreeMark(spc, q)
    return q
  }

  /// Flushes class spc's list down to `keep` objects through the bitmap free path, most recent
  /// first (they are hot in the cache, and the rest keep their depths); their frees were counted
  /// when they were listed. (Flushing the oldest instead made no difference to xmalloc's peak
  /// RSS and walks twice as many cold objects: frag's free phase, 8% more instructions.)
  @inline(never)
  func flushList(_ spc: Int, keep: Int) {
    let l = list(spc)
    let key = l[1]
    let n = listLength(spc) - keep
    if n <= 0 { return }
    var a = l[0]
    let h = heap
    let index = header.pointee.arenas
    var batch: SpanPtr? = nil  // floating spans of other threads, for the mcentral
    for _ in 0..<n {
      let o = UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped
      let next = o[0]
      o[1] = key
      // Safe: a listed object is a live slot, so its span is in the index.
      let s = (goalloc_span_lookup(a)?.assumingMemoryBound(to: MSpan.self) ?? spanOfIndex(index, a)).unsafelyUnwrapped
      let idx = s.objIndex(a)
      if atomicLoadRelaxedUInt(&s.pointee.owner) == UInt(bitPattern: raw) {
        ownerFreeChecked(self, s, idx)  // checked when it was listed
      } else {
        freeSlot(h, raw, s, idx, a, op: "free", batch: &batch)
      }
      a = next
    }
    l[0] = a
    if batch != nil { (h.pointee.centrals + spc).queuePartial(chain: batch) }
  }

  /// Flushes every list (thread exit, releasing memory).
  func flushLists() {
    for spc in MCache.listClasses where listLength(spc) > 0 { flushList(spc, keep: 0) }
  }

  /// Objects on this cache's lists (for heap walks and tests).
  public var listedObjects: Int {
    var n = 0
    for spc in MCache.listClasses { n += listLength(spc) }
    return n
  }
}
