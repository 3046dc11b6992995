// LargeBins: each thread's cache of freed large spans, by page count (not from Go, whose large
// objects always go back to the page heap). Objects of 32 KiB to 256 KiB (spans of up to
// `binMaxPages` pages) sit above Go's size classes, so each malloc and free of one took the heap
// lock (the LargeCache behind it is one cache for the whole process): a ring of 1000 live
// 40 000 B blocks ran ~480 instructions and 11 locked instructions per free + malloc. The bins
// serve such a pair with no lock and no locked instruction.
//
// Layout (a region of the MCache at `MCache.binsOffset`, in 64-byte lines of eight words):
//   line 0      the owner's words: large mallocs and bytes the bins served, large frees and
//               bytes they took (statistics, added to the heap's large counters when the cache
//               dies), pages and spans the owner sent back to the page heap (spilled)
//   line 1      the thieves' words (caches lock): pages and spans stolen; the operation count
//               the scavenger saw at its last look
// What the bins hold is derived, never stored on a hit: pages = (free bytes - malloc bytes) /
// 8 KiB - spilled - stolen, spans likewise; so a hit writes two counters, and each operation
// changes one word MemStats reads (a snapshot of a cache's words is one of some instant).
//   line 1+np   the bin of np-page spans, np = 1...binMaxPages: word 0 the owner's top, words
//               1...binSlots its slots (a span, or 0), filled from the bottom, newest on top
//
// A binned span has state spanBinned, keeps its span-table entries and stays counted in the
// heap's pagesInUse and spansInUse (the heap does not see bins come and go); MemStats moves
// binned - stolen pages from HeapInuse to HeapIdle. A free, realloc or malloc_usable_size of a
// binned span finds a span that is not in use and reports it, as for any freed large object.
//
// Protocol (no lock for the owner):
//   free    (owner)  state inUse -> binned, checked and set with a load and a store (a second
//                    free of the block is reported, unless both run at the same instant);
//                    count it; publish the span in slot top + 1 (release store)
//   malloc  (owner)  busy = 1; compiler barrier; if `revoke` is 0, pop the top nonzero slot
//                    with plain stores; busy = 0 (release). Else (a thief at work, or no
//                    membarrier(2) here) from the top down: CAS slot s -> 0. Then state -> inUse
//                    (a plain store: the span is the owner's alone) and its noscan-ness; count it
//   steal   (anyone, caches lock held)  revoke each cache it takes from; one membarrier(2), so
//                    every owner either sees the revoke or has its busy = 1 visible; wait for
//                    busy == 0; CAS slot s -> 0 for each slot; unrevoke; count the pages in the
//                    cache's stolen words; free the spans to the page heap under the heap lock
// (Pool.swift's handshake, the same way round.) Only the owner makes a slot nonzero, so no slot
// turns 0 -> s behind anyone's back and a span is in at most one slot: the owner's CAS fails
// only when a thief has taken the span (no ABA).
// A thief holds the caches lock from its first CAS to the heap's update, and MemStats holds it
// too, so a snapshot never sees a stolen span in a bin and in the page heap at once. The owner
// counts a spill before the heap takes the pages back (under its lock, which MemStats holds).
//
// Bounds: `binSlots` (7) spans per page count and `binBudgetPages` (256 pages: 2 MiB) per thread,
// about what tcmalloc lets one thread cache hold, and under 1% of the RSS of a program with a few
// dozen such threads. A full bin sends its older half to the page heap; a push over the budget
// first sends whole other bins, largest first; one heap lock each time. A thread whose sizes
// do not repeat (`binMissLimit` misses in a row: random sizes) sends all of them back, so it
// keeps no more pages from the heap than it did without bins.
// Who gives bins back: the owner at thread exit (MCache.releaseAll) and when it turns secure;
// every cache's, from any thread: malloc_trim and every scavenge that releases everything
// (MHeap.scavenge), the memory limit (the scavenger's and scavengeForLimit), a heap about to grow
// (allocSpanReclaiming, with the parked empty spans); the scavenger each tick takes the bins of
// caches that used none since its previous tick (a thread that stops using mid-size blocks
// holds none after 0.1 to 0.2 s); a fork child those of the threads it does not have. The heap
// reaches this tier through `MHeap.binThief`, installed by the first cache of a heap.
// GOALLOC_SECURE=1: nothing is binned (its spans end in a guard page), as for the LargeCache.
//
// Invariants: a nonzero slot holds a large span of its bin's page count, in state spanBinned;
// with no thief and no owner operation running, the slots hold the pages and spans the counters
// say (<= binBudgetPages pages); a dead cache holds no span.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// The largest span a thread's bins keep: 32 pages, 256 KiB.
let binMaxPages = 32
/// Spans per page count (one 64-byte line per bin: the top and 7 slots).
let binSlots = 7
/// Pages a thread's bins hold at most (2 MiB).
let binBudgetPages = 256
/// Misses in a row (no hit between) after which a thread's bins go back to the page heap: its
/// sizes do not repeat, and the bins would only keep pages from the heap.
let binMissLimit = 4

/// The words of the LargeBins region of an MCache (see the header).
enum LargeBins {
  static let allocs = 0        // owner: large mallocs served by the bins
  static let allocBytes = 1
  static let frees = 2         // owner: large frees into the bins
  static let freeBytes = 3
  static let spilledPages = 4  // owner: binned pages it gave back to the page heap
  static let spilledSpans = 5
  static let missMark = 6      // owner: `allocs` at the last miss
  static let missStreak = 7    // owner: misses since the last hit (as far as missMark tells)
  static let stolenPages = 8   // thieves (caches lock)
  static let stolenSpans = 9
  static let seenOps = 10      // the scavenger's last look: allocs + frees then
  static let revoke = 11       // thieves (caches lock): nonzero, the owner's take uses CASes (revokeAlways | revokeThief)
  static let busy = 12         // owner: 1 while its take pops slots with plain stores
  static let revokeAlways: UInt64 = 1  // no membarrier(2) in this process: for good
  static let revokeThief: UInt64 = 2   // a thief is at work on this cache's slots
  static let binsWord = 16     // the bin of np pages: words binsWord + 8 * (np - 1) ...
  static let words = binsWord + 8 * binMaxPages
  static let bytes = words * 8

  /// The bins' share of MemStats: the large objects they served, and what they hold.
  struct Totals {
    var allocs: UInt64 = 0, allocBytes: UInt64 = 0, frees: UInt64 = 0, freeBytes: UInt64 = 0
    var binnedPages: UInt64 = 0, binnedSpans: UInt64 = 0
  }

  /// Sums the live caches of list (caches lock held). A cache's mallocs and frees are read
  /// once and give both its share of HeapAlloc and what its bins hold, so the two agree.
  static func totals(_ list: UnsafeMutablePointer<CacheList>) -> Totals {
    var t = Totals()
    var it = list.pointee.head
    while let raw = it {
      let w = MCache(raw).binWords
      let a = atomicLoadRelaxed64(w + allocs), ab = atomicLoadRelaxed64(w + allocBytes)
      let f = atomicLoadRelaxed64(w + frees), fb = atomicLoadRelaxed64(w + freeBytes)
      t.allocs &+= a
      t.allocBytes &+= ab
      t.frees &+= f
      t.freeBytes &+= fb
      t.binnedPages &+= (fb &- ab) >> UInt64(pageShift) &- atomicLoadRelaxed64(w + spilledPages)
        &- atomicLoadRelaxed64(w + stolenPages)
      t.binnedSpans &+= f &- a &- atomicLoadRelaxed64(w + spilledSpans) &- atomicLoadRelaxed64(w + stolenSpans)
      it = MCache(raw).link.pointee.next
    }
    return t
  }

  /// Takes the spans of every bin of every live cache of heap h (idleOnly: of the caches whose
  /// bins served nothing since the previous such call) back to the page heap. Returns the pages
  /// given back. Takes the caches lock, then the heap lock.
  static func steal(_ h: UnsafeMutablePointer<MHeap>, idleOnly: Bool) -> Int {
    let list = h.pointee.caches
    lockAcquire(&list.pointee.lock)
    var batch: SpanPtr? = nil
    var pages = 0
    // The handshake: every cache with something to take is revoked, one membarrier(2) makes
    // that visible to any owner not yet past its check (or its busy flag visible here), and
    // each owner's take in flight is waited out.
    var revoked = 0
    var it = list.pointee.head
    while let raw = it {
      let c = MCache(raw)
      it = c.link.pointee.next
      if c.hasBinsToSteal(idleOnly: idleOnly) {
        let r = c.binWords + LargeBins.revoke
        atomicStoreRelaxed64(r, atomicLoadRelaxed64(r) | LargeBins.revokeThief)
        revoked += 1
      }
    }
    if revoked == 0 {
      lockRelease(&list.pointee.lock)
      return 0
    }
    _ = goalloc_membarrier()  // (unregistered: every cache is revoked for good anyway)
    it = list.pointee.head
    while let raw = it {
      let c = MCache(raw)
      it = c.link.pointee.next
      let w = c.binWords
      let r = atomicLoadRelaxed64(w + LargeBins.revoke)
      if r & LargeBins.revokeThief == 0 { continue }
      var spins = 0
      while atomicLoad64(w + LargeBins.busy) != 0 {  // (a take is a few instructions, unless its thread is descheduled)
        spins &+= 1
        if spins & 63 == 0 { goalloc_yield() } else { goalloc_cpu_relax() }
      }
      pages += c.stealBins(into: &batch)
      atomicStoreRelaxed64(w + LargeBins.revoke, r & ~LargeBins.revokeThief)
    }
    release(h, batch)
    lockRelease(&list.pointee.lock)
    return pages
  }

  /// The spans of `batch` (linked through `next`, taken out of their slots) back to the page heap.
  static func release(_ h: UnsafeMutablePointer<MHeap>, _ batch: SpanPtr?) {
    guard var it = batch else { return }
    lockAcquire(&h.pointee.lock)
    while true {
      let next = it.pointee.next
      it.pointee.next = nil
      atomicStore32(&it.pointee.state, spanFreeing)
      h.freeSpanLocked(it)
      guard let n = next else { break }
      it = n
    }
    lockRelease(&h.pointee.lock)
  }
}

/// MHeap.binThief for heaps with caches: LargeBins.steal (argument: the heap).
func stealThreadBins(_ h: UnsafeMutableRawPointer, _ idleOnly: Bool) -> Int {
  LargeBins.steal(h.assumingMemoryBound(to: MHeap.self), idleOnly: idleOnly)
}

extension MCache {
  /// The LargeBins region (see the header for its words).
  @inline(__always) var binWords: UnsafeMutablePointer<UInt64> {
    (raw + MCache.binsOffset).assumingMemoryBound(to: UInt64.self)
  }
  /// The bin of np-page spans: [0] the owner's top, [1...binSlots] the slots.
  @inline(__always) func bin(_ np: Int) -> UnsafeMutablePointer<UInt> {
    (raw + MCache.binsOffset + (LargeBins.binsWord &+ (np &- 1) &* 8) &* 8).assumingMemoryBound(to: UInt.self)
  }
  /// Pages the bins hold (the owner's view; a thief may be taking some).
  @inline(__always) var binnedPages: Int {
    let w = binWords
    return Int(truncatingIfNeeded: (w[LargeBins.freeBytes] &- w[LargeBins.allocBytes]) >> UInt64(pageShift)
                 &- w[LargeBins.spilledPages] &- atomicLoadRelaxed64(w + LargeBins.stolenPages))
  }
  /// The owner's counter i += v (read by MemStats).
  @inline(__always) private func binCount(_ i: Int, _ v: Int) {
    counterBump(binWords + i, UInt64(truncatingIfNeeded: v))
  }

  /// malloc of `size` bytes (more than 32 KiB, at most binMaxPages pages) from this thread's
  /// bins, zeroed when asked; nil when the bin of its page count is empty.
  @inline(__always)
  func mallocBinned(_ size: Int, noscan: Bool, zero: Bool) -> UnsafeMutableRawPointer? {
    guard let s = takeBinned((size &+ pageSize &- 1) &>> pageShift, noscan: noscan) else { return nil }
    let p = UnsafeMutableRawPointer(bitPattern: s.pointee.startAddr)
    if zero { goalloc_memset(p, 0, size) }  // a binned span holds old data
    return p
  }

  /// The newest span of the np-page bin, in use again as a large object of kind noscan (its
  /// memory is not zero), counted; nil when the bin is empty.
  @inline(__always)
  func takeBinned(_ np: Int, noscan: Bool) -> SpanPtr? {
    let b = bin(np)
    var top = Int(b.pointee)
    // No thief about (the handshake in the header): the slots are popped with plain stores.
    let w = binWords
    atomicStoreRelaxed64(w + LargeBins.busy, 1)
    goalloc_signal_fence()
    var plain: UInt = 0
    if atomicLoadRelaxed64(w + LargeBins.revoke) == 0 {
      while top > 0 {
        let slot = b + top
        top &-= 1
        plain = atomicLoadRelaxedUInt(slot)
        if plain != 0 { atomicStoreRelaxedUInt(slot, 0); break }
      }
      if plain == 0 { top = 0 }
    }
    atomicStore64(w + LargeBins.busy, 0)
    while plain != 0 || top > 0 {
      let v: UInt
      if plain != 0 {
        v = plain
        plain = 0
      } else {
        let slot = b + top
        top &-= 1
        v = atomicLoadRelaxedUInt(slot)
        if v == 0 || !atomicCASUInt(slot, v, 0) { continue }  // a thief took it
      }
      b.pointee = UInt(top)
      let s = SpanPtr(bitPattern: v).unsafelyUnwrapped
      binCount(LargeBins.allocs, 1)
      binCount(LargeBins.allocBytes, np &* pageSize)
      // (needzero is not set: its line of the span stays cold, and a large span's needzero is
      // read only by the mheap's allocation of it; a binned span is always zeroed when asked.)
      let spc = UInt8(truncatingIfNeeded: SpanClass.large(noscan: noscan).index)
      if s.pointee.spanclass != spc {
        s.setSpanClass(SpanClass(index: Int(spc)))
        if !noscan && s.pointee.collected == 0 { heap.noteRootSpan() }
      }
      atomicStore32(&s.pointee.state, spanInUse)
      return s
    }
    b.pointee = 0
    return nil
  }

  /// Frees large span s (address a, its start) of this cache's heap h into its bin; false when
  /// it is not for the bins (too large, secure mode), nothing done. A block not in use (freed
  /// before, binned or cached) is reported as a double free.
  @inline(__always)
  func freeBinned(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ a: UInt, op: StaticString) -> Bool {
    // (Not secure, so no guard pages: the page count is elemsize's, on the line already read.)
    if atomicLoad32(&h.pointee.secure) != 0 { return false }
    let np = s.pointee.elemsize &>> pageShift
    if np > binMaxPages { return false }
    // A load and a store, not a CAS (a locked instruction cost a ring step 15 %): a double free
    // is caught unless the two frees run at the same instant on two threads. (Nothing else
    // changes an in-use large span's state meanwhile: thieves take only binned spans.)
    if _slowPath(atomicLoad32(&s.pointee.state) != spanInUse) {
      h.badFree(op, "double free detected", a)
      return true
    }
    atomicStore32(&s.pointee.state, spanBinned)
    binCount(LargeBins.frees, 1)
    binCount(LargeBins.freeBytes, np &* pageSize)
    let b = bin(np)
    if Int(b.pointee) == binSlots || binnedPages > binBudgetPages { makeBinRoom(np) }
    let top = Int(b.pointee) &+ 1
    atomicStoreUInt(b + top, UInt(bitPattern: s))
    b.pointee = UInt(top)
    return true
  }

  /// A malloc of a size for the bins missed (on its way to the page heap). After binMissLimit
  /// misses with no hit between, every bin goes back to the page heap: a thread whose sizes do
  /// not repeat (random sizes, a growing buffer) keeps no pages from the heap. The hit path
  /// writes nothing for this: a hit shows as a change of `allocs`.
  func binMissed() {
    let w = binWords
    let a = w[LargeBins.allocs]
    if a != w[LargeBins.missMark] {
      w[LargeBins.missMark] = a
      w[LargeBins.missStreak] = 1
      return
    }
    w[LargeBins.missStreak] &+= 1
    if w[LargeBins.missStreak] >= UInt64(binMissLimit) {
      w[LargeBins.missStreak] = 0
      if binnedPages > 0 { releaseBins() }
    }
  }

  /// Room for one more np-page span: a full bin's older half, then (over the budget) whole
  /// other bins, largest first, go back to the page heap with one heap lock.
  @inline(never)
  func makeBinRoom(_ np: Int) {
    var batch: SpanPtr? = nil
    var pages = 0, spans = 0
    let b = bin(np)
    if Int(b.pointee) == binSlots {
      var j = 0  // the newer spans move down to the bottom slots
      for i in 1...binSlots {
        guard let s = takeSlot(b + i) else { continue }
        if i <= (binSlots + 1) / 2 {
          s.pointee.next = batch
          batch = s
          pages += np
          spans += 1
        } else {
          j += 1
          atomicStoreUInt(b + j, UInt(bitPattern: s))
        }
      }
      b.pointee = UInt(j)
    }
    // (binnedPages counts the span being freed already.)
    var k = binMaxPages
    while binnedPages - pages > binBudgetPages && k >= 1 {
      if k != np {
        let n = emptyBin(k, into: &batch)
        pages += n * k
        spans += n
      }
      k -= 1
    }
    if binnedPages - pages > binBudgetPages {  // (not with these bounds: 7 * 32 + 32 <= 256)
      let n = emptyBin(np, into: &batch)
      pages += n * np
      spans += n
    }
    binCount(LargeBins.spilledSpans, spans)
    binCount(LargeBins.spilledPages, pages)
    LargeBins.release(heap, batch)
  }

  /// The span in slot p, taken out of it (nil: empty, or a thief took it first).
  @inline(__always) private func takeSlot(_ p: UnsafeMutablePointer<UInt>) -> SpanPtr? {
    let v = atomicLoadUInt(p)
    if v == 0 || !atomicCASUInt(p, v, 0) { return nil }
    return SpanPtr(bitPattern: v)
  }

  /// Takes every span of the np-page bin into batch (owner); returns how many.
  private func emptyBin(_ np: Int, into batch: inout SpanPtr?) -> Int {
    let b = bin(np)
    var n = 0
    for i in 1...binSlots {
      guard let s = takeSlot(b + i) else { continue }
      s.pointee.next = batch
      batch = s
      n += 1
    }
    b.pointee = 0
    return n
  }

  /// Every binned span back to the page heap (owner: thread exit, malloc_trim, secure mode).
  func releaseBins() {
    var batch: SpanPtr? = nil
    var pages = 0, spans = 0
    for np in 1...binMaxPages where bin(np).pointee != 0 {
      let n = emptyBin(np, into: &batch)
      pages += n * np
      spans += n
    }
    if batch == nil { return }
    binCount(LargeBins.spilledSpans, spans)
    binCount(LargeBins.spilledPages, pages)
    LargeBins.release(heap, batch)
  }

  /// Whether a thief (LargeBins.steal, caches lock held) takes this cache's bins: they hold
  /// something and, with idleOnly, served nothing since the previous look.
  func hasBinsToSteal(idleOnly: Bool) -> Bool {
    let w = binWords
    let a = atomicLoadRelaxed64(w + LargeBins.allocs), f = atomicLoadRelaxed64(w + LargeBins.frees)
    if f &- a == atomicLoadRelaxed64(w + LargeBins.spilledSpans) &+ atomicLoadRelaxed64(w + LargeBins.stolenSpans) {
      return false  // nothing binned (or a span on its way in: left for the next look)
    }
    if idleOnly {
      let ops = a &+ f
      let seen = atomicLoadRelaxed64(w + LargeBins.seenOps)
      atomicStoreRelaxed64(w + LargeBins.seenOps, ops)
      if ops != seen { return false }
    }
    return true
  }

  /// Takes every binned span of this cache into batch, counted as stolen (a thief: caches lock
  /// held, the owner's plain takes revoked and waited out); returns the pages.
  func stealBins(into batch: inout SpanPtr?) -> Int {
    let w = binWords
    var pages = 0, spans = 0
    for np in 1...binMaxPages {
      let b = bin(np)
      for i in 1...binSlots {
        guard let s = takeSlot(b + i) else { continue }
        s.pointee.next = batch
        batch = s
        pages += np
        spans += 1
      }
    }
    atomicStoreRelaxed64(w + LargeBins.stolenPages, atomicLoadRelaxed64(w + LargeBins.stolenPages) &+ UInt64(pages))
    atomicStoreRelaxed64(w + LargeBins.stolenSpans, atomicLoadRelaxed64(w + LargeBins.stolenSpans) &+ UInt64(spans))
    return pages
  }

  /// Adds the bins' statistics to the heap's large-object counters (the cache dies; caches
  /// lock held).
  func flushBinStats() {
    let h = heap, w = binWords
    atomicAdd64(&h.pointee.largeAllocs, atomicLoad64(w + LargeBins.allocs))
    atomicAdd64(&h.pointee.largeAllocBytes, atomicLoad64(w + LargeBins.allocBytes))
    atomicAdd64(&h.pointee.largeFrees, atomicLoad64(w + LargeBins.frees))
    atomicAdd64(&h.pointee.largeFreeBytes, atomicLoad64(w + LargeBins.freeBytes))
  }
}
