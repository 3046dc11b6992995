// FreeList: each mcache's per-span-class LIFO of objects its thread freed (tcmalloc's thread
// cache, in front of Go's bitmaps). A malloc takes the most recently freed object of its class
// (hot in the cache; a steady loop touches one slot per class); a free of an object whose span
// is at home in the cache (MSpan.home: the thread allocated it), or of another thread's object
// of 64 B or more, pushes onto the list, with no atomics and no bitmap access; another thread's
// smaller objects go back to their spans (Free.swift: `migrateMinSize`). When a list is full,
// half of it is *flushed* through the bitmap free path (MSpan: the owner's local bits, or the
// remote atomics, one per run of slots in a bitmap word, for another thread's span), so spans
// still empty and go back to the heap.
//
// A slot of a list-eligible class is in one of four states; a free tells the first two from the
// rest without the bitmaps:
//   never handed out   at or above span.handedEnd (its high-water mark)
//   handed out         below it; word 1 holds no mark (cleared when handed out)
//   listed             word 0: the next listed object, encoded; word 1: freeKey
//   free in the bitmap word 1: freeKey (written by whoever frees it there)
// so a free is checked with two compares: a listed or free slot is a double free, a slot at or
// above the high-water mark a wild pointer.
//
// Hardening (what a buffer overflow into a freed neighbour, or a write after free, can do):
//   - Links are encoded: word 0 = next * encode (mod 2^64), and a pop decodes it with the
//     inverse multiplier; both are per cache and class, random, and never leave the cache.
//     A decoded link must be 0 or a heap address (below 2^47) aligned to 8; a forged or
//     partly overwritten word decodes to a value whose top 17 and low 3 bits are all zero with
//     probability 2^-20 (a multiplication carries a change at bit j into every bit above it),
//     so the pop aborts with "heap corruption detected" instead of handing out the address.
//   - What must be trusted is kept outside the objects: the head, and the room left in the list
//     (its length), in the class's group of the cache (ClassGroup in MCache). Word 1 is only a
//     mark; a stray write there cannot change the list's length or another object's mark.
//   - The walks (flushes, thread exit) take exactly the recorded length, and check each object
//     before touching its span: a slot of an in-use span of the list's class, handed out at
//     some time, with a valid link. A failed check aborts. A slot listed twice (a double free
//     after a stray write erased its mark) is found when the second copy reaches the bitmap.
//
// Invariants:
//   - a listed object is allocated in its span's bitmaps (the list caches allocated slots), so
//     its span is neither freed nor folded over it while it is listed;
//   - room + length == listLimit(spc); the last object's link encodes 0; only the owning
//     thread touches its lists;
//   - classes of 16 B and up only (an 8 B slot has no word 1), never tiny or large;
//   - a thread's lists are flushed when it exits, by goReleaseFreeMemory (its own), and when its
//     heap comes near its memory limit (then they stay closed: MemoryLimit.swift); a GC mode
//     must flush every list before it marks (as Go flushes mcaches).
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// The two words FreeList keeps in a listed (or bitmap-free) object.
enum ListedObject {
  static let next = 0   // the next listed object, times the list's `encode` multiplier
  static let mark = 1   // freeKey (listed, or free in the bitmap), else not free
}

/// A run of remote frees into one bitmap word of one span, sent with one atomic OR.
struct RemoteRun {
  var span: SpanPtr? = nil
  var word = 0
  var mask: UInt64 = 0
}

/// A decoded link with any of these bits set is not a heap address of a slot: corrupted.
let listLinkMask: UInt = ~((1 << 47) - 1) | 7

extension MCache {
  /// Objects a list may hold: about 32 KiB of objects, 4 to 256.
  @inline(__always) static func listLimit(_ spc: SpanClass) -> Int {
    min(256, max(4, 32768 / classSize(spc.smallSizeclass)))
  }
  /// The span classes with lists: 16 B slots and up (class 2), not tiny.
  static let listClasses = 4..<SpanClass.tiny.index
  @inline(__always) @usableFromInline static func hasList(_ spc: SpanClass) -> Bool {
    UInt(bitPattern: spc.index &- listClasses.lowerBound) < UInt(listClasses.count)
  }

  /// Span class spc's list: its ClassGroup (head, key, room, encode, decode).
  @inline(__always) @usableFromInline func list(_ spc: SpanClass) -> UnsafeMutablePointer<UInt> {
    (raw + MCache.countersOffset).assumingMemoryBound(to: UInt.self) + MCache.listIdx(spc)
  }
  /// The class group at byte offset `offset` of the cache (MSpan.groupOffset): list(spc).
  @inline(__always) @usableFromInline func group(at offset: UInt16) -> UnsafeMutablePointer<UInt> {
    (raw + Int(offset)).assumingMemoryBound(to: UInt.self)
  }
  /// The room word of list l. Written by the owner only (the free fast path decrements it in
  /// place: listPushFree); MemStats reads other threads' rooms racily, a word at a time.
  @inline(__always) @usableFromInline static func room(_ l: UnsafeMutablePointer<UInt>) -> UInt {
    goalloc_load_racy(l + ClassGroup.room)
  }
  @inline(__always) @usableFromInline static func setRoom(_ l: UnsafeMutablePointer<UInt>, _ v: UInt) {
    atomicStoreRelaxedUInt(l + ClassGroup.room, v)
  }

  /// The heap's key (each list's group holds it too: the fast paths read it there).
  var freeKey: UInt { heap.pointee.freeKey }
  /// Word 1 marks a listed or bitmap-free slot with the key. (One value for both: the free fast
  /// path tests it with one compare; the walks tell the two apart by where they find a slot.)
  @inline(__always) @usableFromInline static func isFreeMark(_ w1: UInt, key: UInt) -> Bool {
    w1 == key
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

  /// Sets up every class's list: empty, full room, and its own random link multipliers.
  func initLists() {
    let key = freeKey
    var seed = goalloc_random64()
    for i in 0..<SpanClass.count {
      let spc = SpanClass(index: i)
      let l = list(spc)
      l[ClassGroup.head] = 0
      l[ClassGroup.key] = key
      l[ClassGroup.room] = MCache.hasList(spc) ? UInt(MCache.listLimit(spc)) : 0
      seed = seed &+ 0x9E37_79B9_7F4A_7C15
      let e = UInt(truncatingIfNeeded: mix64(seed)) | 1
      l[ClassGroup.encode] = e
      l[ClassGroup.decode] = inverseMod64(e)
    }
    (raw + MCache.linkMaskOffset).storeBytes(of: listLinkMask, as: UInt.self)
  }

  /// Objects on class spc's list. (A secure cache's rooms are biased below zero: SecureMode.)
  @inline(__always) func listLength(_ spc: SpanClass) -> Int {
    if !MCache.hasList(spc) { return 0 }
    var room = Int(bitPattern: MCache.room(list(spc)))
    if room < -(secureRoomBias >> 1) { room &+= secureRoomBias }
    // (A full list's room reads -1 for an instant while its owner's free finds it full.)
    return MCache.listLimit(spc) &- max(room, 0)
  }

  /// The mask of valid links, kept in the cache (a memory operand for the pop's test).
  @inline(__always) @usableFromInline var linkMask: UInt {
    (raw + MCache.linkMaskOffset).load(as: UInt.self)
  }

  /// Takes `head`, the non-zero head of list l, off the list: false (nothing changed) when the
  /// link to the next object is corrupted. The caller counts the malloc.
  @inline(__always) @usableFromInline func listPopHead(_ l: UnsafeMutablePointer<UInt>, _ head: UInt) -> Bool {
    let o = UnsafeMutablePointer<UInt>(bitPattern: head).unsafelyUnwrapped  // Safe: a listed object.
    let next = o[ListedObject.next] &* l[ClassGroup.decode]
    if _slowPath(next & linkMask != 0) { return false }
    l[ClassGroup.head] = next
    l[ClassGroup.room] &+= 1  // (plain, in place: see room(_:))
    o[ListedObject.mark] = 0
    return true
  }

  /// The most recently freed object of class spc, off the list (counted as a malloc by the
  /// caller); 0 when the list is empty. Aborts when the link to the next one is corrupted.
  @inline(__always) @usableFromInline func listPop(_ spc: SpanClass) -> UInt {
    let l = list(spc)
    let p = l[ClassGroup.head]
    if _slowPath(p == 0) { return 0 }
    if _slowPath(!listPopHead(l, p)) { listCorrupted(spc, p) }
    return p
  }

  /// Pushes object a (checked by the caller: a handed-out slot); false when the list is full.
  /// The caller counts the free.
  @inline(__always) @usableFromInline func listPush(_ l: UnsafeMutablePointer<UInt>, _ a: UInt) -> Bool {
    // room - 1 below zero: full (room is at most 256, so the sign bit is free).
    let room = MCache.room(l) &- 1
    if _slowPath(Int(bitPattern: room) < 0) { return false }
    listLink(l, a)
    MCache.setRoom(l, room)
    return true
  }

  /// The free fast path's push of object a (a handed-out slot, as far as its span can tell) onto
  /// list l, counted: false (nothing changed) when a carries the free mark (a double free, which
  /// the slow path reports) or the list is full. The key is read once, before any store (a may
  /// lie anywhere, as far as the compiler knows), and the room is decremented in place.
  @inline(__always) @usableFromInline func listPushFree(_ l: UnsafeMutablePointer<UInt>, _ a: UInt) -> Bool {
    let o = UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped  // Safe: a is a slot.
    let key = l[ClassGroup.key]
    if _slowPath(o[ListedObject.mark] == key) { return false }
    let room = l + ClassGroup.room
    room.pointee &-= 1  // (plain: the owner's word; MemStats reads it racily, see room(_:))
    if _slowPath(Int(bitPattern: room.pointee) < 0) {
      // (Read again, not kept: the decrement then stays one instruction on memory.)
      atomicStoreRelaxedUInt(room, atomicLoadRelaxedUInt(room) &+ 1)
      return false
    }
    o[ListedObject.next] = l[ClassGroup.head] &* l[ClassGroup.encode]
    o[ListedObject.mark] = key
    l[ClassGroup.head] = a
    MCache.countListFree(l)
    return true
  }

  /// Makes slot a the head of list l: its encoded link to the old head, its listed mark.
  @inline(__always) func listLink(_ l: UnsafeMutablePointer<UInt>, _ a: UInt) {
    let o = UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped  // Safe: a is a slot.
    o[ListedObject.next] = l[ClassGroup.head] &* l[ClassGroup.encode]
    o[ListedObject.mark] = l[ClassGroup.key]
    l[ClassGroup.head] = a
  }

  /// listPush without the room check (the caller knows there is room: SecureMode's shuffle).
  @inline(__always) func listPushUnbounded(_ l: UnsafeMutablePointer<UInt>, _ a: UInt) {
    listLink(l, a)
    MCache.setRoom(l, MCache.room(l) &- 1)
  }

  /// A pop found the link after listed object p corrupted.
  @inline(never)
  func listCorrupted(_ spc: SpanClass, _ p: UInt) -> Never {
    heapCorrupted("free list link overwritten in the freed object at", p)
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
      countListedOther(spc, 1)
      guard let next = s.nextFreeFast() else { return listPop(spc) }  // q again (popped: a malloc)
      q = next
    }
    MCache.clearFreeMark(spc, q)
    return q
  }

  /// Flushes class spc's list down to `keep` objects through the bitmap free path, most recent
  /// first (they are hot in the cache); their frees were counted when they were listed.
  /// (Flushing the oldest instead made no difference to xmalloc's peak RSS and walks twice as
  /// many cold objects: frag's free phase, 8% more instructions.)
  @inline(never)
  func flushList(_ spc: SpanClass, keep: Int) {
    let l = list(spc)
    let n = listLength(spc) - keep
    if n <= 0 { return }
    l[ClassGroup.head] = drainList(spc, from: l[ClassGroup.head], count: n)
    MCache.setRoom(l, MCache.room(l) &+ UInt(n))
    countListedOther(spc, -n)
  }

  /// Sends the first n objects of class spc's list (starting at `first`) to their spans' bitmaps; returns the rest of the list. The walk takes
  /// exactly the recorded length and checks every object first (see the header). Remote frees
  /// into one bitmap word in a row share one atomic OR (objects another thread allocated one
  /// after the other sit side by side).
  func drainList(_ spc: SpanClass, from first: UInt, count n: Int) -> UInt {
    let l = list(spc)
    let key = l[ClassGroup.key], decode = l[ClassGroup.decode]
    var a = first
    let h = heap
    let index = header.pointee.arenas
    var batch: SpanPtr? = nil  // floating spans of other threads, for the mcentral
    var run = RemoteRun()
    // The span of the run, checked once (in use, of this class): [lo, hi) are its slots handed
    // out so far, where the next objects of a run mostly lie. Dropped whenever a run is sent
    // (that may free the span), so it never outlives the listed objects that keep it in use.
    var checked = SpanPtr(bitPattern: 1).unsafelyUnwrapped, lo: UInt = 0, hi: UInt = 0
    for _ in 0..<n {
      let s: SpanPtr
      if a &- lo < hi &- lo && a & listLinkMask == 0 {
        s = checked
      } else {
        guard let cs = checkedListedSpan(spc, a, index: index) else {
          heapCorrupted("free list entry is not a freed object of its class:", a)
        }
        s = cs
        checked = cs
        lo = cs.pointee.startAddr
        hi = atomicLoadRelaxedUInt(&cs.pointee.handedEnd)
      }
      guard let idx = s.slotIndex(a) else { heapCorrupted("free list entry is not a freed object of its class:", a) }
      let o = UnsafeMutablePointer<UInt>(bitPattern: a).unsafelyUnwrapped  // Safe: checked.
      let next = o[ListedObject.next] &* decode
      if next & listLinkMask != 0 { listCorrupted(spc, a) }
      o[ListedObject.mark] = key  // (again: a stray write may have erased it while listed)
      let w = idx &>> 6, bit: UInt64 = 1 &<< UInt64(idx & 63)
      if run.span != s || run.word != w {
        sendRun(run, &batch)
        run = RemoteRun(span: s, word: w, mask: 0)
        lo = 0
        hi = 0
      }
      // Listed twice (a double free after a stray write erased the object's mark).
      if run.mask & bit != 0 {
        h.badFree("free", "double free detected (found by a free-list flush)", a)
      } else {
        run.mask |= bit
      }
      a = next
    }
    sendRun(run, &batch)
    if batch != nil { h.central(spc).queuePartial(chain: batch) }
    return a
  }

  /// The frees of a run: in a span this cache owns, the owner's plain bits, all at once (a slot
  /// already free there is a double free); else one atomic OR into the span's freeBits (a slot
  /// already there is a double free), and a floating span found is claimed (into `batch` for
  /// the mcentral, or this thread's ready list if it is at home here).
  @inline(__always) func sendRun(_ run: RemoteRun, _ batch: inout SpanPtr?) {
    guard let s = run.span else { return }
    if owns(s) {
      let bad = ownerFreeRun(s, run.word, run.mask)
      if _slowPath(bad != 0) { reportDoubleFrees(s, run.word, bad) }
      return
    }
    let (claim, dup) = s.markRemoteFrees(run.word, run.mask)
    if _slowPath(dup != 0) { reportDoubleFrees(s, run.word, dup) }
    if claim { MCache.claimFloating(heap, self, s, batch: &batch) }
  }

  @inline(never)
  func reportDoubleFrees(_ s: SpanPtr, _ w: Int, _ dup: UInt64) {
    var d = dup
    while d != 0 {
      let i = w &* 64 &+ d.trailingZeroBitCount
      d &= d &- 1
      heap.badFree("free", "double free detected (found by a free-list flush)",
                   s.pointee.startAddr &+ UInt(i &* s.pointee.elemsize))
    }
  }

  /// The span and slot index of listed object a of class spc, or nil when a cannot be one: not
  /// a slot of an in-use span of that class, or never handed out. (Its mark is not required: a
  /// stray write to word 1 of a freed object is as harmless here as under the other allocators.)
  func checkedListed(_ spc: SpanClass, _ a: UInt, index: UnsafeMutableRawPointer) -> (SpanPtr, Int)? {
    guard let s = checkedListedSpan(spc, a, index: index), let idx = s.slotIndex(a) else { return nil }
    return (s, idx)
  }

  /// The span of listed object a of class spc: an in-use span of that class, a handed out at
  /// some time (below its high-water mark); nil otherwise. (The slot's alignment is the caller's.)
  @inline(__always)
  func checkedListedSpan(_ spc: SpanClass, _ a: UInt, index: UnsafeMutableRawPointer) -> SpanPtr? {
    guard a & listLinkMask == 0, let s = goalloc_span_lookup(a)?.assumingMemoryBound(to: MSpan.self) ?? spanOfIndex(index, a),
          atomicLoad32(&s.pointee.state) == spanInUse, s.spanClass == spc,
          a >= s.pointee.startAddr, a < atomicLoadRelaxedUInt(&s.pointee.handedEnd)
    else { return nil }
    return s
  }

  /// Flushes every list, and the quarantine (thread exit, releasing memory).
  func flushLists() {
    for i in MCache.listClasses where listLength(SpanClass(index: i)) > 0 { flushList(SpanClass(index: i), keep: 0) }
    flushQuarantine()
  }

  /// Objects on this cache's lists (for heap walks and tests).
  public var listedObjects: Int {
    var n = 0
    for i in MCache.listClasses { n += listLength(SpanClass(index: i)) }
    return n
  }
}

/// A 64-bit mixing function (splitmix64's finalizer constants are facts of arithmetic).
@inline(__always) func mix64(_ x: UInt64) -> UInt64 {
  var z = x
  z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
  z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
  return z ^ (z >> 31)
}

/// The inverse of odd x modulo 2^64 (Newton's iteration: each step doubles the correct bits).
func inverseMod64(_ x: UInt) -> UInt {
  var y = x  // correct to 3 bits for odd x
  for _ in 0..<5 { y = y &* (2 &- x &* y) }
  return y
}
