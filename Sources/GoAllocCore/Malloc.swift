// Malloc: an overview of GoAlloc's allocator, and its entry points (malloc, aligned malloc,
// releasing free memory).
//
// GoAlloc is Go's runtime allocator (src/runtime/malloc.go and friends) rebuilt in Swift, with
// explicit free added. The data structures, from the thread outwards (each in its own file):
//
//   MCache    per thread, one current MSpan per span class and a FreeList per class (objects
//             the thread freed, most recent first); allocation pops the list or takes a slot
//             with one count-trailing-zeros on the span's allocCache. No locks, no atomic RMW.
//             Spans the thread's frees reclaimed wait on its ready list (oldest first). Its
//             LargeBins keep freed large spans of up to 256 KiB by page count.
//   MCentral  per span class (SpanClass: size class x noscan); the partial spans (full ones
//             float, owned by nobody).
//   MHeap     the page heap: memory mapped in steps above a random base (HeapAddress), seen as
//             64 MiB arenas (HeapArena), an arena index mapping any address to its span in O(1)
//             (one load through the flat table of the 64 GiB window above the base),
//             PageAlloc, which finds runs of 8 KiB pages through a radix tree of summaries and
//             merges free neighbours (PageCache in front of it for small spans), the LargeCache
//             of recently freed large spans, the walk of every span, and the Scavenger, which gives
//             free pages back to the OS.
//   MSpan     a run of pages cut into slots of one size class (or one large object).
//   FixAlloc / PersistentAlloc   metadata allocators over mmap (never malloc).
// Around them: Free and Realloc (the other entry points), Process (the heap's and the threads'
// lifecycle), MemStats, Invariants, HeapMap, AllocTrace and HeapProfile (reading the heap),
// Debug (GOALLOC_DEBUG and bad-free reports), OS (the kernel). Calls run downwards through the
// tiers: entry points -> mcache -> mcentral -> mheap -> pages -> span (docs/DESIGN.md;
// Scripts/check-tiers.py checks it).
//
// Allocating an object of n bytes:
//   1. n <= 32 KiB: round up to a size class (one table load), then its SpanClass (noscan or not).
//      Noscan objects under 16 B (Go mode) go to the tiny allocator instead.
//   2. Pop the class's free list; else take the thread's span for that class, where
//      `nextFreeFast` pops a slot from allocCache.
//   3. Else `mallocRefill` -> `nextFree`: scan the span's allocBits; if exhausted, fold frees that
//      arrived for it; if still nothing, `refill` lets it float and takes the oldest ready span
//      with enough frees, else a span from the mcentral (a partial one, or a new one).
//   4. n > 32 KiB: a span of its own: up to 256 KiB the newest of the thread's LargeBins of
//      its page count (no lock), else straight from the mheap.
//   5. Zero the slot only if asked and the span may hold old data (`needzero`).
// Freeing p:
//   1. The span of p (one load in the flat table; else the arena index); "not ours", dead spans
//      and interior pointers are reported.
//   2. Small (16 B and up), of a span at home in this thread's cache: a slot's start (one
//      multiply by the span's magic), below the span's high-water mark, without the free mark in
//      its second word (FreeList), then pushed onto the thread's free list. A full list sends half of itself to the bitmaps, as 8 B objects
//      and threads without a cache go at once: in a span this thread owns, a plain bit in its
//      own-free bitmap; else an atomic OR into the free bitmap (an already-set bit is a double
//      free) and one count pending; the first free into a floating span claims it. The owner
//      folds freed bits into allocBits when its allocCache runs dry, as Go's sweeper turns mark
//      bits into alloc bits.
//   3. Large: up to 256 KiB the span goes to the thread's LargeBins (LargeBins.swift: bins by
//      page count, no lock, bounded, taken back by the scavenger and before the heap grows); else
//      to the LargeCache or back to the mheap, where its pages merge with free neighbours.
//      (Free.swift has the details.)
//
// Two alignment modes share one heap: Go mode (Go's classes as they are: 18 B -> 24 B,
// 8-aligned) for the Swift API and the GC mode, and malloc mode (every request >= 16 B is
// 16-aligned: 17..24 B -> 32 B; no tiny allocator) for the C ABI.
import CGoAllocShim

// MARK: malloc

/// Go's mallocgc for the explicit-free world. Returns nil with errno = ENOMEM on failure.
/// - Parameters:
///   - noscan: the object holds no pointers (GC mode: never scanned; Go mode: tiny-eligible).
///   - zero: the memory must read as zero.
///   - mallocMode: C alignment (16 B for requests >= 16 B), no tiny allocator.
@inline(__always) @usableFromInline
func mallocgc(_ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool) -> UnsafeMutableRawPointer? {
  // Fast path: one TLS load, one table load, then the class's free list or its span's allocCache.
  // (Size 0 takes the smallest class, as the slow path would: the tables map 0 as 1.)
  // x: the size class times 128 (a class's two groups in the cache), by the size itself up to
  // 1 KiB, else by (size + 7) / 8.
  var x = 0, small = true
  if _fastPath(UInt(bitPattern: size) <= 1024) { x = Int(goalloc_size_class_x128(size, mallocMode ? 1 : 0)) }
  else if UInt(bitPattern: size) <= UInt(maxSmallSize) { x = sizeToClass(size, mallocMode: mallocMode) &<< 7 }
  else { small = false }
  if _fastPath(small) && (mallocMode || !noscan || size >= tinySize) {
    // (A thread without a cache reads the idle cache here: every malloc then misses.)
    let c = MCache(goalloc_tls_fast().unsafelyUnwrapped)
    let sc = x &>> 7
    let spc = SpanClass(sizeclass: sc, noscan: noscan)
    // The most recently freed object of the class (FreeList), else the span's next free slot.
    // A list whose head's link is corrupted goes to the slow path, which reports it.
    let l = (UnsafeMutableRawPointer(c.list(SpanClass(sizeclass: 0, noscan: noscan))) + x).assumingMemoryBound(to: UInt.self)
    let head = l[ClassGroup.head]
    if head != 0 {
      // (A pop counts nothing: the list's flow tells MemStats how many there were.)
      if _fastPath(c.listPopHead(l, head)) {
        if zero { MCache.zeroSlot(spc, head) }
        return UnsafeMutableRawPointer(bitPattern: head)
      }
    } else {
      let s = c.alloc[spc.index]
      if let p = s.nextFreeFast() {
        // clearFreeMark's test, on the group's address (one register fewer: no frame).
        if l >= c.list(SpanClass(index: MCache.listClasses.lowerBound)) {
          UnsafeMutablePointer<UInt>(bitPattern: p).unsafelyUnwrapped[ListedObject.mark] = 0
        }
        c.mallocDone(spc, p, requested: size, clear: zero && s.pointee.needzero != 0)
        return UnsafeMutableRawPointer(bitPattern: p)
      }
    }
  }
  // One call site for every miss, so the fast path above needs no stack frame.
  return mallocSlow(size, noscan: noscan, zero: zero, mallocMode: mallocMode, alignment: 0)
}

/// The fast path's usual miss: the current span's allocCache is empty (a small, non-tiny object
/// and a fast-path cache, so not instrumented).
@inline(never) @usableFromInline
func mallocRefill(_ c: MCache, _ spc: SpanClass, _ size: Int, zero: Bool) -> UnsafeMutableRawPointer? {
  let p = mallocSmall(c, spc, size, zero: zero)
  if p == 0 { return enomem() }
  let h = c.heap
  if _slowPath(atomicLoad32(&h.pointee.scavenger.pointee.wanted) != 0) { h.startScavengerIfNeeded() }
  return UnsafeMutableRawPointer(bitPattern: p)
}

/// Every miss of the fast path: the usual ones (a small class's allocCache ran dry; an object of
/// up to 256 KiB, which the LargeBins may hold) jump on with no stack frame of their own here.
@inline(never) @usableFromInline
func mallocSlow(_ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool, alignment: Int)
  -> UnsafeMutableRawPointer?
{
  if alignment == 0, let raw = goalloc_tls_get() {
    // The fast path's usual miss: its span's allocCache ran dry.
    if UInt(bitPattern: size) <= UInt(maxSmallSize) && (mallocMode || !noscan || size >= tinySize) {
      return mallocRefill(MCache(raw), SpanClass(sizeclass: sizeToClass(size, mallocMode: mallocMode), noscan: noscan),
                          size, zero: zero)
    }
    // A large object of up to 256 KiB: the thread's LargeBins first (a fast-path cache, so not
    // instrumented).
    if UInt(bitPattern: size &- (maxSmallSize &+ 1)) < UInt(binMaxPages &* pageSize &- maxSmallSize) {
      return mallocMid(MCache(raw), size, noscan: noscan, zero: zero, mallocMode: mallocMode)
    }
  }
  return mallocGeneral(size, noscan: noscan, zero: zero, mallocMode: mallocMode, alignment: alignment)
}

/// An object of up to 256 KiB: the newest span of its page count in cache c's LargeBins, else
/// the general path.
@inline(never)
func mallocMid(_ c: MCache, _ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool) -> UnsafeMutableRawPointer? {
  if let p = c.mallocBinned(size, noscan: noscan, zero: zero) { return p }
  return mallocGeneral(size, noscan: noscan, zero: zero, mallocMode: mallocMode, alignment: 0)
}

/// Everything else: creates the thread's cache if it has none, serves any size and alignment,
/// instruments when asked.
@inline(never)
func mallocGeneral(_ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool, alignment: Int)
  -> UnsafeMutableRawPointer?
{
  if size < 0 { return enomem() }
  let size = size == 0 ? 1 : size
  var c: MCache
  if let cc = currentCache() { c = cc } else { return enomem() }
  // A thread past its exit flush gets a cache for this one call.
  let temporary = goalloc_tls_state_get() != 0
  defer { if temporary { releaseThreadCache() } }
  var sc = 0
  let p = mallocWith(c, size, noscan: noscan, zero: zero, mallocMode: mallocMode,
                     alignment: alignment, sizeclass: &sc)
  if p == 0 { return enomem() }
  let h = c.heap
  if _slowPath(atomicLoad32(&h.pointee.scavenger.pointee.wanted) != 0) { h.startScavengerIfNeeded() }
  if _slowPath(h.instrumented) {
    h.recordAlloc(c, p, size: size, sizeclass: sc, slot: sc == 0 ? roundUp(size, pageSize) : classSize(sc))
  }
  return UnsafeMutableRawPointer(bitPattern: p)
}

/// The allocation itself, from cache c; 0 when out of memory. Sets `sizeclass` (0: large).
func mallocWith(_ c: MCache, _ size: Int, noscan: Bool, zero: Bool, mallocMode: Bool,
                alignment: Int, sizeclass: inout Int) -> UInt {
  var size = size
  var sc = 0
  if alignment > (mallocMode ? 16 : 8) {
    // A class whose every slot is aligned (slots start at page-aligned bases), else large.
    if alignment <= pageSize && size <= maxSmallSize {
      sc = sizeToClass(max(size, alignment), mallocMode: mallocMode)
      while sc < numSizeClasses && classSize(sc) & (alignment - 1) != 0 { sc += 1 }
      if sc == numSizeClasses { sc = 0 }
    }
    if sc == 0 {
      size = max(size, maxSmallSize + 1)
      return largeAlloc(c, size, noscan: noscan, zero: zero, alignPages: max(1, alignment / pageSize))
    }
  } else if size > maxSmallSize {
    return largeAlloc(c, size, noscan: noscan, zero: zero, alignPages: 1)
  } else if !mallocMode && noscan && size < tinySize {
    sizeclass = tinySizeClass
    return c.mallocTiny(size)
  } else {
    sc = sizeToClass(size, mallocMode: mallocMode)
  }
  sizeclass = sc
  return mallocSmall(c, SpanClass(sizeclass: sc, noscan: noscan), size, zero: zero)
}

/// A slot of span class spc from cache c (refilling as needed), counted and zeroed if asked;
/// 0 when out of memory.
@inline(__always)
func mallocSmall(_ c: MCache, _ spc: SpanClass, _ size: Int, zero: Bool) -> UInt {
  let listed = mallocListed(c, spc, size, zero: zero)
  if listed != 0 { return listed }
  var p = c.nextFree(spc)
  if p == 0 { return 0 }
  let s = c.alloc[spc.index]
  if MCache.hasList(spc) {
    if _slowPath(c.header.pointee.secure) { p = c.shuffleWindow(spc, s, p) }
    // (A fresh span only: slot 0 is the only slot ever handed out. A span used before keeps
    // its objects where they were; colouring it again each time it empties costs a list round.)
    else if p == s.pointee.startAddr && s.pointee.handedEnd == p &+ 1 { p = c.colourFirstSlot(spc, s, p) }
  }
  c.mallocDone(spc, p, requested: size, clear: zero && s.pointee.needzero != 0)
  return p
}

/// The most recently freed object of span class spc off cache c's list, zeroed if asked (a
/// listed object always holds old data; a pop is counted by the list's flow: ClassGroup); 0
/// when the list is empty.
@inline(__always)
func mallocListed(_ c: MCache, _ spc: SpanClass, _ size: Int, zero: Bool) -> UInt {
  let p = c.listPop(spc)
  if _fastPath(p != 0) && zero { MCache.zeroSlot(spc, p) }
  return p
}

func enomem() -> UnsafeMutableRawPointer? {
  goalloc_set_errno(goalloc_errno_enomem())
  return nil
}

/// The largest request served (larger ones fail with ENOMEM before any arithmetic can overflow).
public let maxAllocSize = 1 << (heapAddrBits - 2)
/// The largest alignment served by the aligned entry points.
public let maxAlignment = 1 << 40

/// A dedicated span for one object of more than 32 KiB: one of the thread's LargeBins of its
/// page count, else from the mheap.
func largeAlloc(_ c: MCache, _ size: Int, noscan: Bool, zero: Bool, alignPages: Int) -> UInt {
  if size > maxAllocSize { return 0 }
  let npages = (size + pageSize - 1) >> pageShift
  if npages <= binMaxPages && alignPages == 1 {
    if let s = c.takeBinned(npages, noscan: noscan) {
      if zero { goalloc_memset(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr), 0, size) }
      return s.pointee.startAddr
    }
    c.binMissed()
  }
  let h = c.heap
  guard let s = h.allocSpanReclaiming(npages, spanclass: .large(noscan: noscan), alignPages: alignPages) else {
    return 0
  }
  atomicAdd64(&h.pointee.largeAllocs, 1)
  atomicAdd64(&h.pointee.largeAllocBytes, UInt64(npages * pageSize))
  if zero && s.pointee.needzero != 0 {
    goalloc_memset(UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr), 0, size)
  }
  return s.pointee.startAddr
}

// MARK: entry points (the C ABI and the Swift API are thin layers over these)

/// malloc: `size` bytes, or nil with errno = ENOMEM.
@inline(__always) public func goMalloc(_ size: Int, noscan: Bool = true, zero: Bool = false,
                                       mallocMode: Bool) -> UnsafeMutableRawPointer? {
  mallocgc(size, noscan: noscan, zero: zero, mallocMode: mallocMode)
}

/// `size` bytes at a multiple of `alignment` (a power of two; any size up to the heap's limit).
public func goAlignedAlloc(_ size: Int, alignment: Int, noscan: Bool = true, zero: Bool = false,
                           mallocMode: Bool) -> UnsafeMutableRawPointer? {
  // size_t values above Int.max arrive negative: no such request can be served.
  if size < 0 || size > maxAllocSize || alignment <= 0 || alignment > maxAlignment { return enomem() }
  // Every class of 16 B or more is 16-aligned in malloc mode, every class 8-aligned in Go mode.
  if alignment <= (mallocMode ? 16 : 8) {
    return mallocgc(max(size, alignment), noscan: noscan, zero: zero, mallocMode: mallocMode)
  }
  return mallocSlow(max(size, 1), noscan: noscan, zero: zero, mallocMode: mallocMode, alignment: alignment)
}

/// Gives empty spans back to the page heap and every free page back to the OS.
/// Returns the bytes released to the OS.
@discardableResult public func goReleaseFreeMemory() -> Int {
  guard let h = globalHeap() else { return 0 }
  // Pools drop everything they hold (Pool.swift), then the calling thread's free lists go
  // back: their objects may be all that holds a span.
  reportPoolEvent(h, PoolEvent.trim)
  if let raw = existingThreadCache() { MCache(raw).flushLists() }
  h.reclaim()
  return h.releaseAll()
}
