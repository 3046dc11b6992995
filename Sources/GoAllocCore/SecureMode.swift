// SecureMode: GOALLOC_SECURE=1, a heap that is harder to exploit at a measured cost (as
// mimalloc's secure build). See Malloc.swift for an overview of the allocator.
//
// In secure mode, on top of what every heap does (encoded, checked free-list links; the
// randomized heap base):
//   - Guard pages: every span ends with one inaccessible page (MHeap.allocSpan), so a linear
//     overflow off the end of a small-object span or a large object faults at once. Large
//     objects are then neither cached (LargeCache, LargeBins) nor resized in place.
//   - Random slot order: when a thread takes slots from a span's bitmap, it takes the rest of
//     the allocCache window too (up to its list's limit), lists them in random order and hands
//     them out from the list, so neighbouring allocations are not neighbours in memory.
//   - Quarantine: a freed object is not reused at once. No free can push onto a list (each
//     list's `room` is biased below zero), so frees take the slow path, where the object is
//     marked free and put in a random one of 64 quarantine slots of the thread's cache; the
//     object it displaces goes to its span's bitmap, reusable after the next fold.
// The fast paths are the same instructions as without secure mode: it works only through the
// data they read (a biased room, spans whose allocCache a refill drains).
//
// Invariants: a cache is secure iff its header says so, and then every list's room is
// `secureRoomBias` below the true one; quarantined objects are allocated in their spans'
// bitmaps and carry the bitmap-free mark (a second free of one is a double free).
import CGoAllocShim

let quarantineSlots = 64
/// What a secure cache's list rooms are lowered by: no push from the fast path ever fits. (A lean
/// cache, near the memory limit, closes its lists the same way: MemoryLimit.swift.)
let secureRoomBias = 1 << 40

extension MCache {
  /// The quarantine: objects freed in secure mode, not reusable yet (0: empty slot).
  @inline(__always) var quarantine: UnsafeMutablePointer<UInt> {
    (raw + MCache.secureOffset).assumingMemoryBound(to: UInt.self)
  }
  /// Scratch space for shuffling a window of slots.
  @inline(__always) var shuffleScratch: UnsafeMutablePointer<UInt> { quarantine + quarantineSlots }

  /// A random number from this cache's own generator (xorshift64*).
  func secureRandom() -> UInt {
    var x = header.pointee.rng
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    header.pointee.rng = x
    return UInt(truncatingIfNeeded: x &* 0x2545_F491_4F6C_DD1D)
  }

  /// Makes this cache secure (its heap is): lists flushed, rooms biased, generator seeded.
  func becomeSecure() {
    if header.pointee.secure { return }
    flushLists()
    releaseBins()  // binned large spans have no guard page
    for i in MCache.listClasses {
      let l = list(SpanClass(index: i))
      l[ClassGroup.room] = UInt(bitPattern: Int(bitPattern: l[ClassGroup.room]) &- secureRoomBias)
    }
    header.pointee.rng = goalloc_random64() | 1
    header.pointee.secure = true
  }

  /// A checked free (a handed-out slot a of span s) in secure mode: marked free and held in a
  /// random quarantine slot; the object that was there goes to its span's bitmap.
  func quarantineFree(_ a: UInt) {
    MCache.setFreeMark(a, key: freeKey)
    let j = Int(secureRandom() % UInt(quarantineSlots))
    let old = quarantine[j]
    quarantine[j] = a
    if old != 0 { releaseQuarantined(old) }
  }

  /// Every quarantined object to the bitmaps (thread exit, releasing memory).
  func flushQuarantine() {
    if !header.pointee.secure { return }
    for j in 0..<quarantineSlots where quarantine[j] != 0 {
      let a = quarantine[j]
      quarantine[j] = 0
      releaseQuarantined(a)
    }
  }

  private func releaseQuarantined(_ a: UInt) {
    // Safe: a was a checked slot when it was quarantined, and is allocated in its span since.
    let s = (goalloc_span_lookup(a)?.assumingMemoryBound(to: MSpan.self) ?? spanOfIndex(header.pointee.arenas, a)).unsafelyUnwrapped
    let idx = s.objIndex(a)
    if owns(s) {
      if !ownerFree(s, idx) { heap.badFree("free", "double free detected (found leaving the quarantine)", a) }
    } else {
      MCache.freeRemote(heap, self, s, idx, a, op: "free")
    }
  }

  /// Secure allocation: slot p was just taken from span s (class spc, this cache's current span)
  /// and the list is empty. Takes the rest of the span's allocCache window too (up to the list's
  /// limit), lists them in random order and hands out one of them at random.
  func shuffleWindow(_ spc: SpanClass, _ s: SpanPtr, _ p: UInt) -> UInt {
    let scratch = shuffleScratch
    let cap = min(MCache.listLimit(spc), quarantineSlots)
    scratch[0] = p
    var n = 1
    while n < cap, let q = s.nextFreeFast() {
      MCache.clearFreeMark(spc, q)
      scratch[n] = q
      n += 1
    }
    var i = n - 1
    while i > 0 {  // Fisher-Yates
      let j = Int(secureRandom() % UInt(i + 1))
      let t = scratch[i]
      scratch[i] = scratch[j]
      scratch[j] = t
      i -= 1
    }
    let l = list(spc)
    for k in 1..<n { listPushUnbounded(l, scratch[k]) }
    countListedOther(spc, n - 1)
    return scratch[0]
  }
}
