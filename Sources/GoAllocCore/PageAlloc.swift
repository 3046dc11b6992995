// PageAlloc: the mheap's allocator of runs of 8 KiB heap pages (Go's mpagealloc).
//
// Address-ordered first fit with no free lists: each 4 MiB chunk (512 pages) has a bitmap of
// free pages and a bitmap of scavenged pages (returned to the OS, so known to read as zero).
// Above the chunks sits a radix tree of summaries, 5 levels with 8 children per entry:
//
//   level:          0        1        2        3        4 (leaf = one chunk)
//   pages/entry:  2^21     2^18     2^15     2^12     2^9
//
// A summary packs (start, max, end): free pages at the start of the region, the longest free run
// anywhere in it, and free pages at its end (21 bits each; bit 63 = all three are 2^21). A parent
// merges its 8 children, so `find` descends from level 0 and reaches a fitting run in a bounded
// number of steps, never walking page by page. Freeing only sets bits and re-merges: adjacent
// free runs coalesce by construction, because summaries describe runs, not blocks.
// Unlike Go, a set bit here means *free* (zeroed memory = "allocated", so address space the heap
// never added reads as unavailable with no initialisation).
// Levels 0...3 share one array, two words per level-3 entry: word 2i is level-3 entry i, and the
// odd words hold the upper levels (level l entry k at slot k << 3(3-l) + (2-l)). A chunk's
// ancestors then sit within a few words of each other, so a small heap's summaries take one or
// two resident pages instead of one per level. The whole address space would need 64 MiB of
// summaries; only the 8 KiB blocks of the level-0 entries (16 GiB each) from the heap's lowest to
// its highest address are mapped, as one mapping that grows with the heap (its pages are moved,
// not copied, into a larger mapping), so a heap that spans 1 GiB maps 8 or 16 KiB of summaries.
// The chunks' records sit in 8 GiB blocks of 278 KiB, mapped as the heap reaches them.
//
// Invariants (checked by `checkInvariants`):
// - every leaf summary equals the one computed from its chunk's free bitmap;
// - every parent equals the merge of its 8 children;
// - scavenged bits are only set on free pages; freePages/scavPages match the bitmaps.
// Locking: the mheap lock protects everything here.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

let logChunkPages = 9
let chunkPages = 1 << logChunkPages        // 512 pages
let logChunkBytes = logChunkPages + pageShift  // 4 MiB
let chunkIndexBits = heapAddrBits - logChunkBytes  // 25
let chunkL2Bits = 11                               // 2048 chunks (8 GiB) per block of records
let chunkL1Bits = chunkIndexBits - chunkL2Bits     // 14
/// The words of one chunk's record (512 pages), in the chunk tables: its free bitmap (a set bit
/// is a free page), its scavenged bitmap (set only on free pages) and its leaf summary.
enum Chunk {
  static let free = 0      // words [0, 8)
  static let scav = 8      // words [8, 16)
  static let summary = 16
  static let words = 17
  static let bitmapWords = chunkPages / 64  // 8
}
let summaryLevels = 5
let maxPackedValue = 1 << 21

@inline(__always) func levelLogPages(_ level: Int) -> Int { 21 - 3 * level }
@inline(__always) func levelEntries(_ level: Int) -> Int { 1 << (13 + 3 * level) }

@inline(__always) func packSum(_ start: Int, _ max: Int, _ end: Int) -> UInt64 {
  if max == maxPackedValue { return 1 << 63 }
  return UInt64(start) | UInt64(max) << 21 | UInt64(end) << 42
}
@inline(__always) func unpackSum(_ s: UInt64) -> (start: Int, max: Int, end: Int) {
  if s & (1 << 63) != 0 { return (maxPackedValue, maxPackedValue, maxPackedValue) }
  let m: UInt64 = (1 << 21) - 1
  return (Int(s & m), Int((s >> 21) & m), Int((s >> 42) & m))
}

/// Longest run of set bits in `x`.
@inline(__always) func longestOnes(_ x: UInt64) -> Int {
  // One step per run of ones (usually one or two), not one per bit of the longest run.
  var y = x, best = 0
  while y != 0 {
    y >>= UInt64(y.trailingZeroBitCount)     // the next run starts at bit 0
    let run = (~y).trailingZeroBitCount
    if run > best { best = run }
    if run == 64 { break }
    y >>= UInt64(run)
  }
  return best
}
/// Mask of bits [lo, hi) of one word; 0 <= lo < hi <= 64.
@inline(__always) func bitRange(_ lo: Int, _ hi: Int) -> UInt64 {
  let len = hi - lo
  return len == 64 ? ~0 : ((1 << UInt64(len)) - 1) << UInt64(lo)
}

public struct PageAlloc {
  var chunksL1: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>  // 2^14 blocks of 2^11 chunks
  var levels: UnsafeMutablePointer<UInt64>? = nil  // levels 0...3, interleaved (see `summary`)
  var levelsFirst = 0  // the first level-0 entry whose block `levels` holds
  var levelsCount = 0  // level-0 entries (8 KiB blocks) mapped
  var minChunk = Int.max
  var maxChunk = -1
  var totalPages = 0   // pages ever added by grow
  var freePages = 0    // free pages, scavenged or not
  var scavPages = 0    // free pages that are scavenged
  var inFlight = 0     // free pages taken out by the scavenger while it releases them
  var sys = 0          // bytes of metadata mapped
  var cache = PageCache()  // free pages taken out for small spans (PageCache)

  init?() {
    guard let l1 = sysMap((1 << chunkL1Bits) * 8) else { return nil }
    chunksL1 = l1.assumingMemoryBound(to: UnsafeMutablePointer<UInt64>?.self)
    sys = (1 << chunkL1Bits) * 8
  }

  /// Words of summaries under one level-0 entry: two per level-3 entry below it (8 KiB).
  static let blockWords = 2 << (3 * (summaryLevels - 2))
  static let blockBytes = blockWords * 8

  /// Level `level` (0...3) summary entry `i` (its level-0 ancestor's block must be mapped).
  @inline(__always) func summary(_ level: Int, _ i: Int) -> UnsafeMutablePointer<UInt64> {
    let base = levels.unsafelyUnwrapped - (levelsFirst &* PageAlloc.blockWords)
    if level == summaryLevels - 2 { return base + (i &<< 1) }
    let up = summaryLevels - 2 - level
    return base + (((i &<< (3 &* up)) &+ (up &- 1)) &<< 1 | 1)
  }

  /// Maps the summary blocks of the level-0 entries over chunks [lo, hi] (and those between them
  /// and the heap's other chunks): one mapping, grown by moving the old one's pages into place.
  mutating func mapSummaries(_ lo: Int, _ hi: Int) -> Bool {
    let shift = 3 * (summaryLevels - 1)  // chunks per level-0 entry: 2^12
    var first = lo >> shift, last = hi >> shift
    if let _ = levels {
      if first >= levelsFirst && last < levelsFirst + levelsCount { return true }
      first = min(first, levelsFirst)
      last = max(last, levelsFirst + levelsCount - 1)
    }
    let bytes = (last - first + 1) * PageAlloc.blockBytes
    guard let m = sysMap(bytes) else { return false }
    if let old = levels {
      let oldBytes = levelsCount * PageAlloc.blockBytes
      goalloc_sys_move(old, oldBytes, m + (levelsFirst - first) * PageAlloc.blockBytes)
      sys -= oldBytes
    }
    levels = m.assumingMemoryBound(to: UInt64.self)
    levelsFirst = first
    levelsCount = last - first + 1
    sys += bytes
    return true
  }

  /// Words between a level's consecutive entries: a parent's 8 children are this far apart.
  @inline(__always) static func summaryStride(_ level: Int) -> Int { 2 &<< (3 &* (summaryLevels - 2 - level)) }

  /// The chunk's 17 words (free bits, scavenged bits, leaf summary), or nil outside the heap.
  @inline(__always) func chunk(_ ci: Int) -> UnsafeMutablePointer<UInt64>? {
    guard let block = chunksL1[ci >> chunkL2Bits] else { return nil }
    return block + (ci & ((1 << chunkL2Bits) - 1)) * Chunk.words
  }

  @inline(__always) func leafSummary(_ ci: Int) -> UInt64 {
    guard let c = chunk(ci) else { return 0 }
    return c[Chunk.summary]
  }

  /// Summary of the 512 pages of one chunk, from its free bitmap.
  static func summarize(_ c: UnsafeMutablePointer<UInt64>) -> UInt64 {
    var start = 0, best = 0, run = 0
    var startDone = false
    for w in 0..<Chunk.bitmapWords {
      let f = c[Chunk.free + w]
      if f == ~0 {
        run += 64
        if !startDone { start += 64 }
        continue
      }
      let low = (~f).trailingZeroBitCount  // free bits at the low end of this word
      if !startDone { start += low; startDone = true }
      best = max(best, run + low, longestOnes(f))
      run = (~f).leadingZeroBitCount
    }
    best = max(best, run)
    return packSum(start, best, run)
  }

  /// Merges 8 child summaries of `childPages` pages each, `stride` words apart; with no
  /// `children`, the leaf summaries of chunks leafBase..<leafBase + 8.
  static func merge(_ children: UnsafeMutablePointer<UInt64>?, stride: Int = 0, leafBase: Int, pa: PageAlloc,
                    childPages: Int) -> UInt64 {
    var src = children
    var step = stride
    if src == nil {  // the 8 chunks share one L2 block (leafBase is a multiple of 8)
      guard let block = pa.chunksL1[leafBase >> chunkL2Bits] else { return 0 }
      src = block + (leafBase & ((1 << chunkL2Bits) - 1)) * Chunk.words + Chunk.summary
      step = Chunk.words
    }
    let c = src.unsafelyUnwrapped
    var start = 0, best = 0, end = 0
    var prefixFree = true
    for k in 0..<8 {
      let s = c[k &* step]
      if s == 0 {  // no free page (most entries of a sparse heap): a short step
        best = max(best, end)
        end = 0
        prefixFree = false
        continue
      }
      let (cs, cm, ce) = unpackSum(s)
      if prefixFree { start += cs }
      best = max(best, cm, end + cs)
      if cs == childPages { end += childPages } else { end = ce; prefixFree = false }
    }
    return packSum(start, best, end)
  }

  /// What summary entry i of `level` (0...3) should be: the merge of its 8 children.
  @inline(__always) func mergedSummary(_ level: Int, _ i: Int) -> UInt64 {
    let childPages = 1 << levelLogPages(level + 1)
    return level == summaryLevels - 2
      ? PageAlloc.merge(nil, leafBase: i << 3, pa: self, childPages: childPages)
      : PageAlloc.merge(summary(level + 1, i << 3), stride: PageAlloc.summaryStride(level + 1),
                        leafBase: 0, pa: self, childPages: childPages)
  }

  /// Recomputes leaf summaries of chunks [lo, hi] and their ancestors, stopping at the first
  /// level where nothing changed (its parents cannot change either).
  mutating func update(_ lo: Int, _ hi: Int) {
    var changed = false
    for ci in lo...hi {
      if let c = chunk(ci) {
        let s = PageAlloc.summarize(c)
        if c[Chunk.summary] != s { c[Chunk.summary] = s; changed = true }
      }
    }
    var a = lo, b = hi
    var level = summaryLevels - 2
    while level >= 0 && changed {
      changed = false
      a >>= 3; b >>= 3
      for i in a...b {
        let s = mergedSummary(level, i)
        let dst = summary(level, i)
        if dst.pointee != s { dst.pointee = s; changed = true }
      }
      level -= 1
    }
  }

  /// Applies `body(chunkWords, firstPage, count)` to each chunk piece of [base, base+npages).
  @inline(__always)
  func forEachChunk(_ base: UInt, _ npages: Int, _ body: (UnsafeMutablePointer<UInt64>, Int, Int) -> Void) {
    var addr = base, left = npages
    while left > 0 {
      let ci = Int(addr >> UInt(logChunkBytes))
      let pi = Int((addr >> UInt(pageShift)) & UInt(chunkPages - 1))
      let n = min(left, chunkPages - pi)
      body(chunk(ci)!, pi, n)
      addr += UInt(n) << UInt(pageShift)
      left -= n
    }
  }

  @inline(__always)
  static func forEachWord(_ first: Int, _ count: Int, _ body: (Int, UInt64) -> Void) {
    var i = first
    let end = first + count
    while i < end {
      let w = i >> 6
      let hi = min(end - (w << 6), 64)
      body(w, bitRange(i & 63, hi))
      i = (w + 1) << 6
    }
  }

  @inline(__always) func chunkRange(_ base: UInt, _ npages: Int) -> (Int, Int) {
    (Int(base >> UInt(logChunkBytes)),
     Int((base + (UInt(npages) << UInt(pageShift)) - 1) >> UInt(logChunkBytes)))
  }

  /// Adds [base, base+npages) to the heap: free and scavenged (fresh from the OS, reads as zero).
  /// False (nothing changed) when the metadata's memory is refused.
  mutating func grow(_ base: UInt, _ npages: Int) -> Bool {
    let (lo, hi) = chunkRange(base, npages)
    if !mapSummaries(lo, hi) { return false }
    var l1 = lo >> chunkL2Bits
    while l1 <= hi >> chunkL2Bits {
      if chunksL1[l1] == nil {
        let bytes = (1 << chunkL2Bits) * Chunk.words * 8
        guard let m = sysMap(bytes) else { return false }
        sys += bytes
        chunksL1[l1] = m.assumingMemoryBound(to: UInt64.self)
      }
      l1 += 1
    }
    forEachChunk(base, npages) { c, pi, n in
      PageAlloc.forEachWord(pi, n) { w, m in c[Chunk.free + w] |= m; c[Chunk.scav + w] |= m }
    }
    minChunk = min(minChunk, lo)
    maxChunk = max(maxChunk, hi)
    totalPages += npages
    freePages += npages
    scavPages += npages
    update(lo, hi)
    return true
  }

  /// First fit: the lowest address of `npages` free pages, or nil.
  func find(_ npages: Int) -> UInt? {
    if maxChunk < 0 { return nil }
    var level = 0
    var first = minChunk >> (3 * (summaryLevels - 1))
    var last = maxChunk >> (3 * (summaryLevels - 1))
    while true {
      let logPages = levelLogPages(level)
      let entryPages = 1 << logPages
      var run = 0
      var runBase: UInt = 0
      var next = -1
      var i = first
      while i <= last {
        let s = level == summaryLevels - 1 ? leafSummary(i) : summary(level, i).pointee
        let entryBase = UInt(i) << UInt(logPages + pageShift)
        if s == 0 { run = 0; i += 1; continue }
        let (st, mx, en) = unpackSum(s)
        if run + st >= npages { return run > 0 ? runBase : entryBase }
        if mx >= npages {
          if level == summaryLevels - 1 { return entryBase + (UInt(findInChunk(i, npages)) << UInt(pageShift)) }
          next = i
          break
        }
        if st == entryPages {
          if run == 0 { runBase = entryBase }
          run += entryPages
        } else {
          run = en
          runBase = entryBase + (UInt(entryPages - en) << UInt(pageShift))
        }
        i += 1
      }
      if next < 0 { return nil }
      level += 1
      first = next << 3
      last = first + 7
    }
  }

  /// First run of `npages` free pages inside chunk `ci` (its summary says one exists).
  func findInChunk(_ ci: Int, _ npages: Int) -> Int {
    let c = chunk(ci)!
    if npages == 1 {
      for w in 0..<Chunk.bitmapWords where c[Chunk.free + w] != 0 { return w * 64 + c[Chunk.free + w].trailingZeroBitCount }
    }
    var run = 0, runStart = 0
    for w in 0..<Chunk.bitmapWords {
      let x = c[Chunk.free + w]
      var bit = 0
      while bit < 64 {
        let rest = x >> UInt64(bit)
        if rest & 1 == 1 {
          let len = min((~rest).trailingZeroBitCount, 64 - bit)
          if run == 0 { runStart = w * 64 + bit }
          run += len
          if run >= npages { return runStart }
          bit += len
        } else {
          run = 0
          bit += rest == 0 ? 64 - bit : rest.trailingZeroBitCount
        }
      }
    }
    fatal("pagealloc", "summary promised a run the bitmap does not have", UInt(ci))
  }

  /// Marks [base, base+npages) allocated. Returns how many of those pages were scavenged.
  mutating func allocRange(_ base: UInt, _ npages: Int) -> Int {
    var scav = 0
    forEachChunk(base, npages) { c, pi, n in
      PageAlloc.forEachWord(pi, n) { w, m in
        if c[Chunk.free + w] & m != m { fatal("pagealloc", "allocating pages that are not free", base) }
        c[Chunk.free + w] &= ~m
        scav += (c[Chunk.scav + w] & m).nonzeroBitCount
        c[Chunk.scav + w] &= ~m
      }
    }
    let (lo, hi) = chunkRange(base, npages)
    update(lo, hi)
    freePages -= npages
    scavPages -= scav
    return scav
  }

  /// Allocates `npages` at an address aligned to `alignPages` pages (a power of two).
  /// Returns (base, scavenged pages) or nil.
  mutating func alloc(_ npages: Int, alignPages: Int = 1) -> (UInt, Int)? {
    guard let b = find(npages + alignPages - 1) else { return nil }
    let base = roundUp(b, UInt(alignPages) << UInt(pageShift))
    return (base, allocRange(base, npages))
  }

  /// Returns [base, base+npages) to the free pool; neighbours merge through the summaries.
  /// `scavenged`: the caller released the pages to the OS already (they read as zero).
  mutating func free(_ base: UInt, _ npages: Int, scavenged: Bool = false) {
    forEachChunk(base, npages) { c, pi, n in
      PageAlloc.forEachWord(pi, n) { w, m in
        if c[Chunk.free + w] & m != 0 { fatal("pagealloc", "freeing pages that are already free", base) }
        c[Chunk.free + w] |= m
        if scavenged { c[Chunk.scav + w] |= m }
      }
    }
    let (lo, hi) = chunkRange(base, npages)
    update(lo, hi)
    freePages += npages
    if scavenged { scavPages += npages }
  }

  /// Number of free pages in [base, base+npages) and how many of them are scavenged.
  func countFree(_ base: UInt, _ npages: Int) -> (free: Int, scavenged: Int) {
    var f = 0, s = 0
    forEachChunk(base, npages) { c, pi, n in
      PageAlloc.forEachWord(pi, n) { w, m in
        f += (c[Chunk.free + w] & m).nonzeroBitCount
        s += (c[Chunk.free + w] & c[Chunk.scav + w] & m).nonzeroBitCount
      }
    }
    return (f, s)
  }

  /// The scavenger's first half: takes up to `maxPages` free, unscavenged pages, highest
  /// addresses first, in runs of at least `minRun` pages (whole runs up to 512 pages, so dense
  /// memory is not split needlessly), and marks them in use so nobody allocates them while they
  /// are being released. Writes (base, npages) pairs to `out` (at most `capacity`).
  /// Returns the number of runs. Counters are unchanged (the pages stay "free" in the stats).
  mutating func takeUnscavenged(maxPages: Int, minRun: Int, skipDense: Bool,
                                into out: UnsafeMutablePointer<UInt>, capacity: Int) -> Int {
    if maxChunk < 0 { return 0 }
    var nruns = 0, taken = 0
    var ci = maxChunk
    while ci >= minChunk && nruns < capacity && taken < maxPages {
      defer { ci -= 1 }
      guard let c = chunk(ci) else { continue }
      var candidates = 0, free = 0
      for w in 0..<Chunk.bitmapWords {
        candidates += (c[Chunk.free + w] & ~c[Chunk.scav + w]).nonzeroBitCount
        free += c[Chunk.free + w].nonzeroBitCount
      }
      if candidates == 0 { continue }
      // Background passes leave dense chunks alone (>= 96.9% in use, Go's rule): their memory,
      // and the transparent huge pages behind it, is about to be used again.
      if skipDense && free <= chunkPages / 32 { continue }
      // Runs of free & unscavenged pages in this chunk, from the top.
      var page = chunkPages
      var touched = false
      while page > 0 && nruns < capacity && taken < maxPages {
        // find the highest candidate page below `page`
        var hi = page - 1
        while hi >= 0 && !PageAlloc.isCandidate(c, hi) { hi -= 1 }
        if hi < 0 { break }
        var lo = hi
        while lo > 0 && PageAlloc.isCandidate(c, lo - 1) && hi - lo + 1 < maxPages - taken { lo -= 1 }
        let n = hi - lo + 1
        page = lo
        if n < minRun { continue }
        PageAlloc.forEachWord(lo, n) { w, m in c[Chunk.free + w] &= ~m }
        let base = (UInt(ci) << UInt(logChunkBytes)) + (UInt(lo) << UInt(pageShift))
        out[2 * nruns] = base
        out[2 * nruns + 1] = UInt(n)
        nruns += 1
        taken += n
        touched = true
      }
      if touched { update(ci, ci) }
    }
    inFlight += taken
    return nruns
  }

  @inline(__always) static func isCandidate(_ c: UnsafeMutablePointer<UInt64>, _ i: Int) -> Bool {
    let bit: UInt64 = 1 << UInt64(i & 63)
    return c[Chunk.free + (i >> 6)] & bit != 0 && c[Chunk.scav + (i >> 6)] & bit == 0
  }

  /// The scavenger's second half: the runs were released to the OS; give them back as free and
  /// scavenged (known zero).
  mutating func finishScavenge(_ runs: UnsafeMutablePointer<UInt>, _ nruns: Int) {
    for r in 0..<nruns {
      let base = runs[2 * r], n = Int(runs[2 * r + 1])
      forEachChunk(base, n) { c, pi, cnt in
        PageAlloc.forEachWord(pi, cnt) { w, m in c[Chunk.free + w] |= m; c[Chunk.scav + w] |= m }
      }
      let (lo, hi) = chunkRange(base, n)
      update(lo, hi)
      inFlight -= n
      scavPages += n
    }
  }

  /// Verifies the summaries against the bitmaps. Returns false on the first mismatch.
  func checkInvariants() -> Bool {
    if maxChunk < 0 { return true }
    var free = 0, scav = 0
    for ci in minChunk...maxChunk {
      guard let c = chunk(ci) else { continue }
      if c[Chunk.summary] != PageAlloc.summarize(c) { return false }
      for w in 0..<Chunk.bitmapWords {
        if c[Chunk.scav + w] & ~c[Chunk.free + w] != 0 { return false }  // scavenged but not free
        free += c[Chunk.free + w].nonzeroBitCount
        scav += c[Chunk.scav + w].nonzeroBitCount
      }
    }
    let (cf, cs) = cachedPages
    if free + inFlight + cf != freePages || scav + cs != scavPages { return false }
    var level = summaryLevels - 2
    var a = minChunk, b = maxChunk
    while level >= 0 {
      a >>= 3; b >>= 3
      for i in a...b {
        if summary(level, i).pointee != mergedSummary(level, i) { return false }
      }
      level -= 1
    }
    return true
  }
}
