// MSpan: a run of heap pages holding objects of one span class (or one large object).
//
// Allocation state is Go's: a slot is allocated iff `i < freeindex` or its allocBits bit is set;
// `allocCache` is the complement of allocBits for the 64 slots starting at freeindex, so the
// next free slot is one count-trailing-zeros away. A free by the thread the span is at home with
// (`home`) goes onto its FreeList; what reaches the bitmaps (other threads' frees, list flushes,
// 8 B slots) is a mark
// in reverse: a free by the owner sets the slot's bit in its own `localFreeBits` (plain store);
// any other free sets it in `freeBits` (atomic OR) and, if that word had no bit yet, adds one to
// the pending count in `freeState`; the span's owner later *folds* the freed bits into
// allocBits the way Go's sweeper turns gcmarkBits into allocBits. `handedEnd` bounds the slots
// ever handed out (FreeList's check for wild pointers). The GC mode will use `gcmarkBits` and
// `sweepgen` on the same bitmaps.
//
// Ownership: exactly one of {an mcache (CACHED), as its current span or on its ready list (frees
// to fold);
// its mcentral's lock (on the partial list: PARTIAL); nobody (floating: full, no flag)} owns
// allocBits, freeindex, allocCache, allocCount and the owner-list fields (place, onext, oprev).
// freeBits and freeState are shared (atomics). The first free into a floating span claims it
// (CAS of the flags from 0).
//
// Invariants (owner's view, after a fold):
//   0 <= freeindex <= nelems;  allocCount == popcount(allocated slots);
//   pending(freeState) == words of freeBits with bits the owner has not folded yet (may dip
//   below 0 for an instant: a fold can take a word before its first freer counts it);
//   a span is on at most one list and in at most one cache.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

public struct MSpan {
  // Two cache lines (spans are 64-byte aligned): the owner's line (what it writes on every
  // malloc, and fields written rarely under a lock), and the line every free reads (fixed once
  // the span is set up) with the one word other threads write, freeState, at its end: a remote
  // free writes it only on the first free into a clean bitmap word, so a consumer freeing into a
  // producer's span seldom touches a line the producer writes.
  // Line 0: the owner's allocation state, then cold fields (each written under a lock, or once).
  @usableFromInline var allocCache: UInt64 = 0  // ~allocBits from freeindex; 1 = free
  // owner only: links of its ready or sparse list; `next`/`prev` (the same words) link a span
  // that is on an mcentral's partial list, a GC list or a LargeBins batch. A span is on at most
  // one list: CACHED and PARTIAL exclude each other, and large or collected spans are never on
  // a cache's lists.
  @usableFromInline var onext: SpanPtr? = nil
  @usableFromInline var oprev: SpanPtr? = nil
  @usableFromInline var owner: UInt = 0          // atomic: the owning mcache, or 0 (tagged: MCache.ownerTag)
  @usableFromInline var freeindex32: UInt32 = 0  // freeindex (slots below are allocated until a fold)
  @usableFromInline var allocCount32: UInt32 = 0 // allocCount (allocated slots: owner's count)
  @usableFromInline var localFreed: UInt32 = 0   // owner's frees not folded yet (read by heap walks)
  // sweepgen (GC mode). With h = the heap's sweepgen, which a cycle advances by 2, as Go's
  // mspan.sweepgen:
  //   h - 2  the span needs sweeping        h - 1  it is being swept
  //   h      swept, ready to use             h + 1  cached before sweeping began (sweep it first)
  //   h + 3  swept, then cached
  // Ownership is not its business: freeState (below) says who owns the span.
  @usableFromInline var sweepgen: UInt32 = 0
  @usableFromInline var needzero: UInt8 = 0      // free slots may hold old data
  @usableFromInline var place: UInt8 = 0         // owner only: placeCurrent / placeReady / placeSparse
  @usableFromInline var gcqueued: UInt8 = 0      // collected spans: on the mark's span queue (MGCMark)
  @usableFromInline var list: UInt8 = 0          // 0 none, 1 partial (central lock); GC lists: MGCCentral
  // GC mode: the span's entry in the specials table (MGCSpecials: finalizers, cleanups, weak
  // handles of its objects), 0 when it has none. Written under the collector's lock.
  @usableFromInline var specials: UInt32 = 0
  @usableFromInline var npages32: UInt32 = 0     // npages (guard pages included)
  @usableFromInline var nelems16: UInt16 = 0     // nelems (slots in the span; at most 1024)
  @usableFromInline var bitsOrder: UInt8 = 0     // bitmaps are 1 << bitsOrder words each
  @usableFromInline var guardPages: UInt8 = 0    // secure mode: inaccessible pages at the end
  // Line 1: the span's geometry and its home, read by every free (home changes rarely).
  @usableFromInline var startAddr: UInt = 0      // first byte
  @usableFromInline var elemsize: Int = 0        // bytes per slot; npages * 8 KiB for large
  // alloc | free | localFree | gcmark, interleaved; a tiny span's block counts follow them
  @usableFromInline var bits: UnsafeMutablePointer<UInt64>? = nil
  // atomic: one past the start of the highest slot handed out so far (startAddr: none; small
  // spans). An address, so the free fast path bounds a slot with one compare.
  @usableFromInline var handedEnd: UInt = 0
  // objIndex's magic (a 32-bit number) times 2^32; 0 for large spans. Shifted, so the free fast
  // path's slot test needs one multiply and no shift: the offset's product with it, mod 2^64,
  // is below it exactly when the offset is a multiple of elemsize (see slotIndex).
  @usableFromInline var divMulHi: UInt64 = 0
  // atomic: the mcache that owns the span or last did (owner's tag; set when a cache takes it,
  // kept when it lets go). Its thread's frees of the span's objects go onto its lists; every
  // other thread's go back to the span's bitmaps, so objects never migrate between threads.
  // Never 0: `spanNoHome` until a cache takes it (and for tiny, large and GC spans).
  @usableFromInline var home: UInt = spanNoHome
  @usableFromInline var spanclass: UInt8 = 0     // SpanClass.index (read it as `spanClass`; set with setSpanClass)
  @usableFromInline var collected: UInt8 = 0     // 1: a GC mode span (MGC.swift); spanclass is its shape
  @usableFromInline var groupOffset: UInt16 = 0  // byte offset of the class's ClassGroup in an MCache
  // atomic: dead / inUse / freeing / cached / binned. Here, not with the shared words: a large
  // object's free and malloc (LargeBins) then touch this line only.
  @usableFromInline var state: UInt32 = 0
  // Written by other threads (atomic): pending << 32 | flags. pending = words of freeBits with
  // remote frees not folded yet. flags, the span's owner:
  //   CACHED   a thread's cache (current or ready)     -> none: given back full (it floats);
  //                                                        PARTIAL: given back with free slots
  //   PARTIAL  its mcentral's partial list              -> CACHED: a refill took it
  //   none     floating: full, owned by nobody          -> CACHED or PARTIAL: the first remote
  //                                                        free claims it (MSpan.claim)
  @usableFromInline var freeState: UInt64 = 0

  public init() {}
}

extension MSpan {
  // The narrowed fields as Ints (a zero-extending load, a truncating store: no extra instruction).
  @inline(__always) @usableFromInline var freeindex: Int {
    get { Int(freeindex32) }
    set { freeindex32 = UInt32(truncatingIfNeeded: newValue) }
  }
  @inline(__always) @usableFromInline var allocCount: Int {
    get { Int(allocCount32) }
    set { allocCount32 = UInt32(truncatingIfNeeded: newValue) }
  }
  @inline(__always) @usableFromInline var nelems: Int {
    get { Int(nelems16) }
    set { nelems16 = UInt16(truncatingIfNeeded: newValue) }
  }
  @inline(__always) @usableFromInline var npages: Int {
    get { Int(npages32) }
    set { npages32 = UInt32(truncatingIfNeeded: newValue) }
  }
  /// mcentral partial list, GC list and LargeBins batch links: the owner-list words (see onext).
  @inline(__always) @usableFromInline var next: SpanPtr? {
    get { onext }
    set { onext = newValue }
  }
  @inline(__always) @usableFromInline var prev: SpanPtr? {
    get { oprev }
    set { oprev = newValue }
  }
  /// Tiny spans: live sub-objects per 16 B block, after the span's bitmaps (one allocation).
  @inline(__always) var tinyCounts: UnsafeMutablePointer<UInt8>? {
    guard SpanClass(index: Int(spanclass)).isTiny, let b = bits else { return nil }
    return UnsafeMutableRawPointer(b + (4 &<< Int(bitsOrder))).assumingMemoryBound(to: UInt8.self)
  }
}

/// bitsOrder of a span of nelems slots: each bitmap is the next power of two of words.
func spanBitsOrder(_ nelems: Int) -> Int {
  let words = (nelems + 63) >> 6
  var order = 0
  while (1 << order) < words { order += 1 }
  return order
}
/// Bytes of a tiny span's metadata block: its four bitmaps, then one count per block.
func tinySpanBitsBytes() -> Int {
  let n = classNObjs(tinySizeClass)
  return (32 << spanBitsOrder(n)) + n
}

/// Where an MCache's 64-byte class groups start (MCache.countersOffset): MSpan.groupOffset is
/// this plus 64 per span class.
@usableFromInline let cacheGroupsOffset = 1152
/// MSpan.home of a span at home in no cache: not a cache address, and not 0 (see MCache.homeTag).
@usableFromInline let spanNoHome: UInt = 2
@usableFromInline let spanDead: UInt32 = 0
@usableFromInline let spanInUse: UInt32 = 1
@usableFromInline let spanFreeing: UInt32 = 2
@usableFromInline let spanCached: UInt32 = 3   // a freed large span kept by LargeCache
@usableFromInline let spanBinned: UInt32 = 4   // a freed large span in a thread's LargeBins

@usableFromInline let fsCached: UInt64 = 1   // owned by a cache (current or on its ready list)
@usableFromInline let fsPartial: UInt64 = 2  // on its mcentral's partial list
@usableFromInline let fsFlags: UInt64 = 3
/// MSpan.place: where an owned span is in its mcache (owner only).
@usableFromInline let placeCurrent: UInt8 = 0
@usableFromInline let placeReady: UInt8 = 1
@usableFromInline let placeSparse: UInt8 = 2   // on its cache's sparse list (MemoryLimit.swift)
@usableFromInline let fsPendingOne: UInt64 = 1 << 32
/// What `markRemoteFree` did.
enum RemoteFree { case recorded, doubleFree, foundFloating }
@inline(__always) @usableFromInline func fsPending(_ v: UInt64) -> Int { Int(Int64(bitPattern: v) >> 32) }

extension UnsafeMutablePointer where Pointee == MSpan {
  // Safe (all four): bitsOrder <= 4, and `bits` is set for every in-use span.
  @inline(__always) var bitWords: Int { 1 &<< Int(pointee.bitsOrder) }
  // The four bitmaps are interleaved per 64 slots: word w of allocBits, freeBits, localFreeBits
  // and gcmarkBits sit together (one base, fixed offsets: a free touches one 32-byte group).
  // Safe (all four): w < bitWords, and `bits` is set for every in-use span.
  @inline(__always) func allocWord(_ w: Int) -> UnsafeMutablePointer<UInt64> { pointee.bits.unsafelyUnwrapped + (w &<< 2) }
  /// Frees by other threads (atomic OR).
  @inline(__always) func freeWord(_ w: Int) -> UnsafeMutablePointer<UInt64> { allocWord(w) + 1 }
  /// Frees made by the owning thread itself: plain bits, no atomics.
  @inline(__always) func localWord(_ w: Int) -> UnsafeMutablePointer<UInt64> { allocWord(w) + 2 }
  @inline(__always) func gcmarkWord(_ w: Int) -> UnsafeMutablePointer<UInt64> { allocWord(w) + 3 }
  @inline(__always) var usedWords: Int { (pointee.nelems + 63) >> 6 }
  @inline(__always) var spanClass: SpanClass { SpanClass(index: Int(pointee.spanclass)) }
  /// Sets the span class (and the offset of its group in an MCache, which the free fast path reads).
  @inline(__always) func setSpanClass(_ spc: SpanClass) {
    pointee.spanclass = UInt8(spc.index)
    pointee.groupOffset = UInt16(cacheGroupsOffset &+ spc.index &* 64)
  }
  /// Slots handed out at some time (a small span): those below are not wild pointers.
  @inline(__always) var highWater: UInt {
    let e = atomicLoadRelaxedUInt(&pointee.handedEnd)
    return e == pointee.startAddr ? 0 : UInt(bitPattern: objIndex(e &- 1)) &+ 1
  }
  @inline(__always) var isLarge: Bool { spanClass.isLarge }
  @inline(__always) var base: UInt { pointee.startAddr }

  /// objIndex's magic.
  @inline(__always) var divMul: UInt64 { pointee.divMulHi &>> 32 }

  /// Slot index of address `p` inside this small span: one multiply, no divide.
  @inline(__always) func objIndex(_ p: UInt) -> Int {
    Int(truncatingIfNeeded: (UInt64(p &- pointee.startAddr) &* divMul) >> 32)
  }

  /// The slot starting exactly at address p of this small span, or nil for an interior or
  /// out-of-span address. The objIndex product's low 32 bits are below divMul exactly when the
  /// offset is a multiple of elemsize (offsets < 64 KiB, elemsize <= 32 KiB: no carry), so this
  /// costs no second multiply.
  @inline(__always) func slotIndex(_ p: UInt) -> Int? {
    let prod = UInt64(p &- pointee.startAddr) &* divMul
    let idx = Int(truncatingIfNeeded: prod >> 32)
    if UInt32(truncatingIfNeeded: prod) >= UInt32(truncatingIfNeeded: divMul) || idx >= pointee.nelems { return nil }
    return idx
  }

  /// slotIndex without the bound: the index may be nelems or more for an address in the span's
  /// tail (the free fast path bounds it by highWater, which is at most nelems).
  @inline(__always) func slotIndexUnbounded(_ p: UInt) -> Int? {
    let prod = UInt64(p &- pointee.startAddr) &* divMul
    if UInt32(truncatingIfNeeded: prod) >= UInt32(truncatingIfNeeded: divMul) { return nil }
    return Int(truncatingIfNeeded: prod >> 32)
  }

  /// Is p the start of a slot handed out at some time (below the high-water mark)? Nothing
  /// else is computed: the free fast path needs no index.
  @inline(__always) func isHandedOutSlot(_ p: UInt) -> Bool {
    let m = pointee.divMulHi
    return UInt64(p &- pointee.startAddr) &* m < m && p < goalloc_load_racy(&pointee.handedEnd)
  }

  /// The inlined allocation fast path: the next free slot from allocCache, or nil when the
  /// cache word is exhausted (the caller then takes `nextFreeIndex`). About 12 instructions.
  /// Bits of allocBits past nelems are kept set ("allocated"), so a set bit of allocCache is
  /// always a real slot; a word boundary simply empties allocCache and the slow path reloads it.
  @inline(__always) func nextFreeFast() -> UInt? {
    let theBit = pointee.allocCache.trailingZeroBitCount
    if _fastPath(theBit < 64) {
      let result = pointee.freeindex &+ theBit  // Safe: freeindex <= 1024, theBit < 64.
      pointee.allocCache = (pointee.allocCache &>> UInt64(theBit)) &>> 1
      pointee.freeindex = result &+ 1
      pointee.allocCount &+= 1
      // Safe: result < nelems (see above), so the slot lies inside the span.
      let p = pointee.startAddr &+ UInt(bitPattern: result &* pointee.elemsize)
      raiseHighWater(p)
      return p
    }
    return nil
  }

  /// Slot i (at address p) is being allocated: slots below the high-water mark have all been
  /// allocated at some time, so a free of a slot at or above it is a wild pointer (FreeList's fast
  /// check). Written only while the span is first filled.
  @inline(__always) func raiseHighWater(_ p: UInt) {
    if p >= pointee.handedEnd { atomicStoreRelaxedUInt(&pointee.handedEnd, p &+ 1) }
  }

  /// Loads allocCache with the complement of allocBits word `word`.
  @inline(__always) func refillAllocCache(_ word: Int) {
    pointee.allocCache = ~allocWord(word).pointee
  }

  /// The next free slot index, or nelems when the span is full. Owner only.
  func nextFreeIndex() -> Int {
    var sfreeindex = pointee.freeindex
    let snelems = pointee.nelems
    if sfreeindex == snelems { return snelems }
    var bitIndex = pointee.allocCache.trailingZeroBitCount
    if bitIndex == 64 && sfreeindex & 63 == 0 {
      // The fast path stopped on a word boundary without loading the next word.
      refillAllocCache(sfreeindex >> 6)
      bitIndex = pointee.allocCache.trailingZeroBitCount
    }
    while bitIndex == 64 {
      sfreeindex = (sfreeindex + 64) & ~63
      if sfreeindex >= snelems {
        pointee.freeindex = snelems
        return snelems
      }
      refillAllocCache(sfreeindex >> 6)
      bitIndex = pointee.allocCache.trailingZeroBitCount
    }
    let result = sfreeindex + bitIndex
    if result >= snelems {
      pointee.freeindex = snelems
      return snelems
    }
    pointee.allocCache = (pointee.allocCache >> UInt64(bitIndex)) >> 1
    sfreeindex = result + 1
    if sfreeindex & 63 == 0 && sfreeindex != snelems { refillAllocCache(sfreeindex >> 6) }
    pointee.freeindex = sfreeindex
    return result
  }

  /// Is slot i allocated? Owner only (or under the span's mcentral lock).
  @inline(__always) func isAllocated(_ i: Int) -> Bool {
    i < pointee.freeindex || allocWord(i &>> 6).pointee & (1 &<< UInt64(i & 63)) != 0
  }

  /// Owner only: the slots of `mask` in bitmap word w that are allocated and whose frees (by
  /// anyone) are not recorded yet (isUserHeld for 64 slots at once).
  @inline(__always) func heldMask(_ w: Int, _ mask: UInt64) -> UInt64 {
    let lo = w &<< 6, fi = pointee.freeindex
    var alloc = allocWord(w).pointee
    if fi >= lo &+ 64 { alloc = ~0 } else if fi > lo { alloc |= (1 &<< UInt64(fi &- lo)) &- 1 }
    return mask & alloc & ~(localWord(w).pointee | atomicLoadRelaxed64(freeWord(w)))
  }

  /// Owner only: slot i is allocated and its free (by anyone) not recorded yet.
  @inline(__always) func isUserHeld(_ i: Int) -> Bool {
    heldMask(i &>> 6, 1 &<< UInt64(i & 63)) != 0
  }

  /// Folds freed slots into allocBits and resets freeindex to 0 (Go's sweep, with freeBits in
  /// the role of the complement of gcmarkBits). Owner only. Returns the slots that became free;
  /// frees of slots that were not allocated (late-detected double frees) are reported.
  @discardableResult
  func fold(_ h: UnsafeMutablePointer<MHeap>) -> Int {
    let fi = pointee.freeindex
    // Remote bits are set before pending is counted, so none pending means none to look at yet.
    let remoteToo = pendingFrees > 0
    // The owner's own frees were checked when they were made (allocated, not freed before), so
    // they are counted by localFreed; only remote bits need checking and counting here.
    var n = Int(truncatingIfNeeded: pointee.localFreed), total = 0
    for w in 0..<usedWords {
      let word = allocWord(w), local = localWord(w), freed = freeWord(w)
      var a = word.pointee
      let lo = w &<< 6
      if fi >= lo &+ 64 { a = ~0 } else if fi > lo { a |= (1 &<< UInt64(fi &- lo)) &- 1 }
      let mine = local.pointee
      if mine != 0 {
        local.pointee = 0
        a &= ~mine
      }
      if remoteToo && atomicLoadRelaxed64(freed) != 0 {
        let remote = atomicExchange64(freed, 0)
        total += 1
        let valid = remote & a
        let invalid = remote & ~a  // also a slot this thread freed too: a double free
        if _slowPath(invalid != 0) {
          h.badFree("free", "double free (found by sweep)",
                    base + UInt((lo + invalid.trailingZeroBitCount) * pointee.elemsize))
        }
        a &= ~valid
        n += valid.nonzeroBitCount
      }
      word.pointee = a
    }
    // Bits past nelems stay "allocated" so allocCache never offers them.
    let tail = pointee.nelems & 63
    if tail != 0 { allocWord(usedWords - 1).pointee |= ~((1 << UInt64(tail)) - 1) }
    pointee.freeindex = 0
    atomicStoreRelaxed32(&pointee.localFreed, 0)
    pointee.allocCount -= n
    if n > 0 { pointee.needzero = 1 }
    if total > 0 { atomicAdd64(&pointee.freeState, UInt64(bitPattern: -(Int64(total) << 32))) }
    refillAllocCache(0)
    return n
  }

  /// Records the free of slot idx by a thread that does not own the span: an atomic OR into
  /// freeBits. Pending counts words with remote bits, so only the first free into a clean word
  /// pays for a second atomic. A floating span never has such a word (it floats only with none
  /// pending), so the first free after it floated always gets here and sees no flag.
  @inline(__always) func markRemoteFree(_ idx: Int) -> RemoteFree {
    let (claim, dup) = markRemoteFrees(idx &>> 6, 1 &<< UInt64(idx & 63))
    if _slowPath(dup != 0) { return .doubleFree }
    return _slowPath(claim) ? .foundFloating : .recorded
  }

  /// markRemoteFree for the slots of `mask` in bitmap word w at once: whether the span was found
  /// floating (the caller claims it), and the slots already freed there (double frees).
  @inline(__always) func markRemoteFrees(_ w: Int, _ mask: UInt64) -> (claim: Bool, dup: UInt64) {
    let old = atomicOr64(freeWord(w), mask)
    if old == 0 {
      let prev = atomicAdd64(&pointee.freeState, fsPendingOne)
      return (prev & fsFlags == 0, 0)
    }
    return (false, old & mask)
  }

  /// Claims a floating span with frees pending for whoever sets `flag` (fsCached: a thread's
  /// ready list; fsPartial: the mcentral's partial list). False when another free claimed it
  /// first.
  func claim(_ flag: UInt64) -> Bool {
    while true {
      let cur = atomicLoad64(&pointee.freeState)
      if cur & fsFlags != 0 || fsPending(cur) <= 0 { return false }
      if atomicCAS64(&pointee.freeState, cur, cur | flag) { return true }
    }
  }

  /// Words with frees by other threads not folded yet (0: none).
  @inline(__always) var pendingFrees: Int { fsPending(atomicLoad64(&pointee.freeState)) }
  /// Frees by other threads not folded yet (a snapshot; counts the bits).
  var remoteFreeCount: Int {
    if pendingFrees <= 0 { return 0 }
    var n = 0
    for w in 0..<usedWords { n += atomicLoadRelaxed64(freeWord(w)).nonzeroBitCount }
    return n
  }
  /// Frees (local or remote) waiting to be folded. Owner only.
  @inline(__always) var hasUnfoldedFrees: Bool { atomicLoadRelaxed32(&pointee.localFreed) > 0 || pendingFrees > 0 }
  /// Objects still allocated, counting frees not folded yet (any thread; a snapshot).
  var liveObjects: Int {
    max(0, pointee.allocCount - Int(atomicLoadRelaxed32(&pointee.localFreed)) - remoteFreeCount)
  }
}
