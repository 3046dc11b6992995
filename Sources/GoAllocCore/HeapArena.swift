// HeapArena: a 64 MiB region of heap address space and its metadata, and the arena index.
//
// The mheap reserves address space in 64 MiB-aligned arenas (at hinted addresses from
// 0x00c000000000 upward, as Go does, so the heap is contiguous and easy to spot in a dump).
// Each arena has, off-heap, one mspan pointer per 8 KiB page. The arena index is a flat,
// demand-paged table with one entry per possible arena of the 47-bit user address space
// (2^21 entries, 16 MiB of address space, a few pages resident), so
//
//   spanOf(p) = index[p >> 26]?.spans[(p >> 13) & 8191]
//
// is two dependent loads, takes no lock, and answers nil for any address that is not in an
// arena of ours (stack, globals, the system malloc's heap, NULL, kernel addresses).
//
// The arenas of the first 64 GiB above the hint base (the whole heap of nearly every process)
// keep their spans tables in one flat, process-wide table (goalloc_span_lookup in the C shim), so
// the free fast path finds a span with a range check and one load; arenas elsewhere get tables of
// their own. The index entries point into the flat table, so there is one copy of every entry.
//
// Invariants:
// - index entries are published once (release store) and never removed;
// - spans[i] points to the in-use span covering page i, or is nil; entries are written under the
//   mheap lock (set when a span is allocated, cleared when it is freed).
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// Bits of a heap address: user space on x86-64 / arm64 (4-level paging).
let heapAddrBits = 47
let logHeapArenaBytes = 26
let heapArenaBytes = 1 << logHeapArenaBytes   // 64 MiB
let pagesPerArena = heapArenaBytes / pageSize // 8192
let arenaIndexEntries = 1 << (heapAddrBits - logHeapArenaBytes)

public typealias SpanPtr = UnsafeMutablePointer<MSpan>
/// One arena's page -> span table (the arena's metadata starts with it).
typealias ArenaSpans = UnsafeMutablePointer<SpanPtr?>
typealias ArenaIndex = UnsafeMutablePointer<ArenaSpans?>

/// Bytes of off-heap metadata per arena: the spans table.
let heapArenaMetaBytes = pagesPerArena * MemoryLayout<SpanPtr?>.stride

@inline(__always) @usableFromInline
func spanOfIndex(_ index: UnsafeMutableRawPointer, _ p: UInt) -> SpanPtr? {
  if _slowPath(p >> UInt(heapAddrBits) != 0) { return nil }
  let idx = index.assumingMemoryBound(to: ArenaSpans?.self)
  guard let spans = idx[Int(p >> UInt(logHeapArenaBytes))] else { return nil }
  return spans[Int((p >> UInt(pageShift)) & UInt(pagesPerArena - 1))]
}

/// Sets the spans-table entries of [base, base + npages pages) to `s` (nil to clear).
func setSpans(_ index: ArenaIndex, _ base: UInt, _ npages: Int, _ s: SpanPtr?) {
  var p = base
  var left = npages
  while left > 0 {  // one arena at a time: a plain run of stores within its table
    let spans = index[Int(p >> UInt(logHeapArenaBytes))]!
    let first = Int((p >> UInt(pageShift)) & UInt(pagesPerArena - 1))
    let n = min(left, pagesPerArena - first)
    (spans + first).update(repeating: s, count: n)
    left -= n
    p += UInt(n * pageSize)
  }
}

/// Reserves `bytes` (a multiple of 64 MiB) of 64 MiB-aligned address space: first at the next
/// hint, then anywhere (over-reserving and trimming for alignment). Nil when the OS refuses.
func reserveArenas(_ bytes: Int) -> UInt? {
  for _ in 0..<16 {
    let hint = goalloc_arena_hint_take(bytes)
    if hint + UInt(bytes) > UInt(1) << UInt(heapAddrBits) { break }
    if let p = goalloc_sys_map_at(UnsafeMutableRawPointer(bitPattern: hint), bytes) {
      return UInt(bitPattern: p)
    }
  }
  guard let m = goalloc_sys_map_heap(bytes + heapArenaBytes) else { return nil }
  let raw = UInt(bitPattern: m)
  let base = roundUp(raw, UInt(heapArenaBytes))
  if base > raw { goalloc_sys_unmap(m, Int(base - raw)) }
  let tail = raw + UInt(bytes + heapArenaBytes) - (base + UInt(bytes))
  if tail > 0 { goalloc_sys_unmap(UnsafeMutableRawPointer(bitPattern: base + UInt(bytes)), Int(tail)) }
  return base
}
