// PageCache: the free pages of one 64-page block that PageAlloc hands over in one go (Go's
// pageCache; one per heap here, since spans are allocated under the heap lock anyway). Spans of
// 1...16 pages are cut from it with a few bit operations instead of a bitmap update and a
// radix-tree merge per span (about 2 300 instructions per span in frag's fill phase).
//
// Invariants (heap lock):
//   - `free` and `scav` describe the pages [base, base + 64 pages); scav is a subset of free;
//   - a page with its bit in `free` is free in PageAlloc's counters (freePages, and scavPages if
//     its `scav` bit is set) but clear in PageAlloc's bitmaps, so `find` never returns it;
//   - the scavenger flushes the cache back before it looks for pages to release.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

struct PageCache {
  var base: UInt = 0
  var free: UInt64 = 0  // 1 = free page
  var scav: UInt64 = 0  // 1 = free and scavenged (reads as zero)
}

extension PageAlloc {
  /// The largest span cut from the cache.
  static let pageCacheMaxPages = 16

  /// `npages` (1...16) contiguous pages from the cache, refilled from the lowest 64-page block
  /// with a free page when empty: (base, scavenged pages), or nil (the caller asks `alloc`).
  mutating func allocFromCache(_ npages: Int) -> (UInt, Int)? {
    if cache.free == 0 && !refillCache() { return nil }
    var x = cache.free  // bit i: pages i..<i+k are free
    var k = 1
    while k < npages && x != 0 {
      x &= cache.free >> UInt64(k)
      k += 1
    }
    if x == 0 { return nil }
    let i = x.trailingZeroBitCount
    let m = bitRange(i, i + npages)
    let scav = (cache.scav & m).nonzeroBitCount
    cache.free &= ~m
    cache.scav &= ~m
    freePages -= npages
    scavPages -= scav
    return (cache.base + UInt(i) << UInt(pageShift), scav)
  }

  /// Takes every free page of the lowest 64-page block that has one (one word of a chunk's
  /// bitmaps) into the cache. The pages stay counted as free.
  mutating func refillCache() -> Bool {
    guard let p = find(1) else { return false }
    let ci = Int(p >> UInt(logChunkBytes))
    let w = Int((p >> UInt(pageShift)) & UInt(chunkPages - 1)) >> 6
    guard let c = chunk(ci) else { return false }
    cache = PageCache(base: UInt(ci) << UInt(logChunkBytes) + UInt(w << 6) << UInt(pageShift),
                      free: c[Chunk.free + w], scav: c[Chunk.scav + w] & c[Chunk.free + w])
    c[Chunk.free + w] = 0
    c[Chunk.scav + w] = 0  // scavenged bits are only set on free pages
    update(ci, ci)
    return true
  }

  /// Puts the cache's pages back into the bitmaps.
  mutating func flushCache() {
    if cache.free == 0 { return }
    let ci = Int(cache.base >> UInt(logChunkBytes))
    let w = Int((cache.base >> UInt(pageShift)) & UInt(chunkPages - 1)) >> 6
    if let c = chunk(ci) {
      c[Chunk.free + w] |= cache.free
      c[Chunk.scav + w] |= cache.scav
      update(ci, ci)
    }
    cache = PageCache()
  }

  /// Free pages held in the cache: (all, scavenged).
  var cachedPages: (free: Int, scavenged: Int) { (cache.free.nonzeroBitCount, cache.scav.nonzeroBitCount) }
}
