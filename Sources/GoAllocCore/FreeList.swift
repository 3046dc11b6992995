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
// A list's head lives in the class's group of the cache (ClassGroup in MCache), which doubles as
// the list's sentinel: an empty list's head is the group itself, whose `key` word (word 1, as an
// object's mark) is freeKey (depth 0); its `limit` word is freeKey + limit.
//
// Invariants:
//   - a listed object is allocated in its span's bitmaps (the list caches allocated slots), so
//     its span is neither freed nor folded over it while it is listed;
//   - depths run limit >= head > ... > last == 1; only the owning thread touches its lists;
//   - classes of 16 B and up only (an 8 B slot has no word 1), never tiny or large;
//   - a thread's lists are flushed when it exits and by goReleaseFreeMemory (its own); a GC mode
//     must flush every list before it marks (as Go flushes mcaches).
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// The two words FreeList keeps in a listed (or bitmap-free) object; a class's group in the
/// MCache (ClassGroup) has the same two words first, so it serves as the list's sentinel.
enum ListedObject {
  static let next = 0   // the next listed object (the sentinel's: the head)
  static let mark = 1   // freeKey + depth (listed), freeKey (free in the bitmap), else not free
}

extension MCache {
  /// Objects a list may hold: about 32 KiB of objects, 4 to 256.
  @inline(__always) static func listLimit(_ spc: SpanClass) -> Int {
    min(256, max(4, 32768 / classSize(spc.smallSizeclass)))
  }
  /// Word 1 of a listed object is at most freeKey + maxListDepth.
  static let maxListDepth: UInt = 256
  /// The span classes with lists: 16 B slots and up (class 2), not tiny.
  static let listClasses = 4..<SpanClass.tiny.index
  @inline(__always) @usableFromInline static func hasList(_ spc: SpanClass) -> Bool {
    UInt(bitPattern: spc.index &- listClasses.lowerBound) < UInt(listClasses.count)
  }

  /// Span class spc's list: its ClassGroup (head, key as a sentinel of depth 0, limit).
  @inline(__always) @usableFromInline func list(_ spc: SpanClass) -> UnsafeMutablePointer<UInt> {
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
  @inline(__always) @usableFromInline static func clearFreeMark(_ spc: SpanClass, _ p: UInt) {
    // Safe: slots of 16 B or more. (One compare, not hasList's two: a tiny block, the one class
    // above the lists, is zeroed whole when handed out anyway.)
    if spc.index >= listClasses.lowerBound { UnsafeMutablePointer<UInt>(bitPattern: p).unsafelyUnwrapped[ListedObject.mark] = 0 }
  }
  /// Marks slot a (of a class with lists) free in the bitmap: a later free of it is a double free.
  @inline(__always) static func setFreeMark(_ a: UInt, key: UInt) {
    // Safe: slots of classes with lists have a word 1.
    UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped[ListedObject.mark] = key
  }
  /// Does slot a (of a class with lists) carry a free mark (listed, or free in the bitmap)?
  @inline(__always) static func hasFreeMark(_ a: UInt, key: UInt) -> Bool {
    // Safe: slots of classes with lists have a word 1.
    isFreeMark(UnsafePointer<UInt>(bitPattern: a).unsafelyUnwrapped[ListedObject.mark], key: key)
  }

  func initLists() {
    let key = freeKey
    for i in 0..<SpanClass.count {
      let spc = SpanClass(index: i)
      let l = list(spc)
      l[ClassGroup.head] = UInt(bitPattern: l)
      l[ClassGroup.key] = key
      l[ClassGroup.limit] = MCache.hasList(spc) ? key &+ UInt(MCache.listLimit(spc)) : 0
    }
  }

  /// Objects on class spc's list.
  @inline(__always) func listLength(_ spc: SpanClass) -> Int {
    let l = list(spc)
    // Safe: the head is a listed object or the group itself, both with a word 1.
    return Int(bitPattern: UnsafePointer<UInt>(bitPattern: l[ClassGroup.head]).unsafelyUnwrapped[ListedObject.mark] &- l[ClassGroup.key])
  }

  /// The most recently freed object of class spc, off the list (counted as a malloc by the
  /// caller); 0 when the list is empty.
  @inline(__always) @usableFromInline func listPop(_ spc: SpanClass) -> UInt {
    let l = list(spc)
    let p = l[ClassGroup.head]
    if _slowPath(p == UInt(bitPattern: l)) { return 0 }
    let o = UnsafeMutablePointer<UInt>(bitPattern: p).unsafelyUnwrapped  // Safe: a listed object.
    l[ClassGroup.head] = o[ListedObject.next]
    o[ListedObject.mark] = 0
    return p
  }

  /// Pushes object a (checked by the caller: a handed-out slot); false when the list is full.
  /// The caller counts the free.
  @inline(__always) @usableFromInline func listPush(_ l: UnsafeMutablePointer<UInt>, _ a: UInt) -> Bool {
    let h = l[ClassGroup.head]
    // Safe: the head is a listed object or the group itself, both with a word 1.
    let depth = UnsafePointer<UInt>(bitPattern: h).unsafelyUnwrapped[ListedObject.mark] &+ 1
    if _slowPath(depth > l[ClassGroup.limit]) { return false }
    let o = UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped  // Safe: a is a slot.
    o[ListedObject.next] = h
    o[ListedObject.mark] = depth
    l[ClassGroup.head] = a
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
  func colourFirstSlot(_ spc: SpanClass, _ s: SpanPtr, _ p: UInt) -> UInt {
    let sc = spc.smallSizeclass
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
  func flushList(_ spc: SpanClass, keep: Int) {
    let l = list(spc)
    let key = l[ClassGroup.key]
    let n = listLength(spc) - keep
    if n <= 0 { return }
    var a = l[ClassGroup.head]
    let h = heap
    let index = header.pointee.arenas
    var batch: SpanPtr? = nil  // floating spans of other threads, for the mcentral
    for _ in 0..<n {
      let o = UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped
      let next = o[ListedObject.next]
      o[ListedObject.mark] = key
      // Safe: a listed object is a live slot, so its span is in the index.
      let s = (goalloc_span_lookup(a)?.assumingMemoryBound(to: MSpan.self) ?? spanOfIndex(index, a)).unsafelyUnwrapped
      let idx = s.objIndex(a)
      if owns(s) {
        ownerFreeChecked(s, idx)  // checked when it was listed
      } else {
        MCache.freeRemote(h, self, s, idx, a, op: "free", batch: &batch)
      }
      a = next
    }
    l[ClassGroup.head] = a
    if batch != nil { h.central(spc).queuePartial(chain: batch) }
  }

  /// Flushes every list (thread exit, releasing memory).
  func flushLists() {
    for i in MCache.listClasses where listLength(SpanClass(index: i)) > 0 { flushList(SpanClass(index: i), keep: 0) }
  }

  /// Objects on this cache's lists (for heap walks and tests).
  public var listedObjects: Int {
    var n = 0
    for i in MCache.listClasses { n += listLength(SpanClass(index: i)) }
    return n
  }
}
