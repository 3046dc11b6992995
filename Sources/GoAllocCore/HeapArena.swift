// HeapArena: the heap's memory as 64 MiB arenas, the arena index, and the runs of address space
// the heap holds.
//
// The heap maps memory in steps (HeapAddress places them, MHeap.grow sizes them); every 64 MiB-
// aligned region that holds some of it is an arena, with, off-heap, one mspan pointer per 8 KiB
// page. The arena index finds an arena's table in two levels, created as the heap reaches them
// (level 1: 2^10 entries of 128 GiB, in the heap's block; level 2: 2^11 arenas, 16 KiB each),
// so a process maps a few KiB of index instead of one flat 16 MiB table, and
//
//   spanOf(p) = index[p >> 37]?[(p >> 26) & 2047]?[(p >> 13) & 8191]
//
// is three dependent loads, takes no lock, and answers nil for any address that is not in an
// arena of ours (stack, globals, the system malloc's heap, NULL, kernel addresses).
//
// The arenas of the window (the first 64 GiB above the heap's base: the whole heap of nearly every
// process) keep their tables in one flat, process-wide table (goalloc_span_lookup in the C shim),
// so the free fast path finds a span with a range check and one load; arenas elsewhere get tables
// of their own. The index entries point into the flat table, so there is one copy of every entry.
//
// Which pages of an arena are heap memory: the heap's ranges (HeapRange, address-ordered, merged
// when adjacent), which the heap map draws as its `arena` lines.
//
// Invariants:
// - index entries (both levels) are published once (release store) and never removed;
// - spans[i] points to the in-use span covering page i, or is nil; entries are written under the
//   mheap lock (set when a span is allocated, cleared when it is freed);
// - the ranges are disjoint, sorted, never adjacent, and cover exactly the pages the page
//   allocator was given.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// Bits of a heap address: user space on x86-64 / arm64 (4-level paging).
let heapAddrBits = 47
let logHeapArenaBytes = 26
let heapArenaBytes = 1 << logHeapArenaBytes   // 64 MiB
let pagesPerArena = heapArenaBytes / pageSize // 8192
let arenaL2Bits = 11
let arenaL1Bits = heapAddrBits - logHeapArenaBytes - arenaL2Bits  // 10
let arenaL1Shift = logHeapArenaBytes + arenaL2Bits                // 37: 128 GiB per entry
let arenaL1Entries = 1 << arenaL1Bits
let arenaL2Entries = 1 << arenaL2Bits

public typealias SpanPtr = UnsafeMutablePointer<MSpan>
/// One arena's page -> span table (the arena's metadata starts with it).
typealias ArenaSpans = UnsafeMutablePointer<SpanPtr?>
/// A level-2 block of the arena index: the tables of 2^11 consecutive arenas.
typealias ArenaL2 = UnsafeMutablePointer<ArenaSpans?>
/// The arena index's level 1 (in the heap's block).
typealias ArenaIndex = UnsafeMutablePointer<ArenaL2?>

/// Bytes of off-heap metadata per arena: the spans table.
let heapArenaMetaBytes = pagesPerArena * MemoryLayout<SpanPtr?>.stride
let arenaL2Bytes = arenaL2Entries * MemoryLayout<ArenaSpans?>.stride

@inline(__always) @usableFromInline
func spanOfIndex(_ index: UnsafeMutableRawPointer, _ p: UInt) -> SpanPtr? {
  if _slowPath(p >> UInt(heapAddrBits) != 0) { return nil }
  guard let l2 = index.assumingMemoryBound(to: ArenaL2?.self)[Int(p >> UInt(arenaL1Shift))],
        let spans = l2[Int((p >> UInt(logHeapArenaBytes)) & UInt(arenaL2Entries - 1))] else { return nil }
  return spans[Int((p >> UInt(pageShift)) & UInt(pagesPerArena - 1))]
}

/// The spans table of the arena holding p, or nil when this heap has no arena there.
@inline(__always) func arenaSpans(_ index: ArenaIndex, _ p: UInt) -> ArenaSpans? {
  if p >> UInt(heapAddrBits) != 0 { return nil }
  guard let l2 = index[Int(p >> UInt(arenaL1Shift))] else { return nil }
  return l2[Int((p >> UInt(logHeapArenaBytes)) & UInt(arenaL2Entries - 1))]
}

/// Sets the spans-table entries of [base, base + npages pages) to `s` (nil to clear).
func setSpans(_ index: ArenaIndex, _ base: UInt, _ npages: Int, _ s: SpanPtr?) {
  var p = base
  var left = npages
  while left > 0 {  // one arena at a time: a plain run of stores within its table
    let spans = arenaSpans(index, p)!
    let first = Int((p >> UInt(pageShift)) & UInt(pagesPerArena - 1))
    let n = min(left, pagesPerArena - first)
    (spans + first).update(repeating: s, count: n)
    left -= n
    p += UInt(n * pageSize)
  }
}

/// A run of address space the heap holds: [base, end), in the heap's address-ordered list.
struct HeapRange {
  var base: UInt = 0
  var end: UInt = 0
  var next: UnsafeMutablePointer<HeapRange>? = nil
}

/// Walks the spans of a heap in address order through its ranges and spans tables, reading only
/// the tables: a span begins where the entries change to a new span (the entries of its pages
/// name it, those of free pages nothing). So the walk costs no MSpan read, and the caller's body
/// may free the span it gets. Heap lock held, or the world stopped.
struct SpanWalk {
  let index: ArenaIndex
  var range: UnsafeMutablePointer<HeapRange>?
  var p: UInt = 0, end: UInt = 0
  var table: ArenaSpans? = nil, tableArena: UInt = ~0
  var last: SpanPtr? = nil

  init(_ h: UnsafeMutablePointer<MHeap>) {
    index = h.pointee.arenas
    range = h.pointee.ranges
    if let r = range { p = r.pointee.base; end = r.pointee.end }
  }

  mutating func next() -> SpanPtr? {
    while true {
      while p < end {
        let arena = p >> UInt(logHeapArenaBytes)
        if arena != tableArena { table = arenaSpans(index, p); tableArena = arena }
        let e = table?[Int((p >> UInt(pageShift)) & UInt(pagesPerArena - 1))]
        p &+= UInt(pageSize)
        if e != last {
          last = e
          if let s = e { return s }
        }
      }
      guard let r = range?.pointee.next else { range = nil; return nil }
      range = r
      p = r.pointee.base
      end = r.pointee.end
    }
  }
}
