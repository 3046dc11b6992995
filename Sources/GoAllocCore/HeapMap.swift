// HeapMap: a walk over every page of the heap, for heap maps, and the fragmentation figures.
// See Malloc.swift for an overview.
//
// `walkHeap` visits, in address order within each arena (the heap's memory in one 64 MiB region:
// all of it, or part of it where the heap starts or ends), every in-use span and every run of
// free pages (split where the released state changes). It holds the heap lock, so spans are not
// created or freed meanwhile; the allocCount of a span cached by a running thread is read as it
// is at that instant. `writeHeapMap` prints the walk in GoAlloc's heap-map text format:
//
//   # goalloc heapmap v1
//   arena <base> <bytes>
//   span <base> <npages> <spanclass> <elemsize> <nelems> <allocated> <where>
//   free <base> <npages> <released>
//
// Addresses in 0x-hex, the rest decimal; spanclass = sizeclass << 1 | noscan (0/1: large,
// 136: tiny blocks); where = cached | partial | full | large | idle for malloc spans (idle: a
// freed large span kept whole for reuse by the heap's LargeCache or a thread's LargeBins, whose
// pages MemStats counts in HeapIdle, not HeapInuse, and which is not in SpansInUse), and for the
// GC mode's collected spans (MGCCentral) gccached (a thread's GC cache holds it) | gcpartial |
// gcfull (swept, on its lists) | gcunswept (waiting for the lazy sweep: `allocated` still counts
// its dead objects) | gclarge; released = 0 | 1 (returned to the OS).
import CGoAllocShim

// `fragmentation` sums over every span (MHeap.forEachSpanLocked: one spans-table entry per page)
// and the page allocator's counters.

public struct HeapRegion {
  public enum Kind { case arena, span, free }
  public var kind: Kind
  public var base: UInt
  public var npages: Int
  public var spanclass: Int = 0
  public var elemsize: Int = 0
  public var nelems: Int = 0
  public var allocated: Int = 0
  public var cached = false
  public var onPartialList = false
  public var released = false
  public var collected = false      // a GC mode span (spanclass is its shape; noscan bit as usual)
  public var unswept = false        // collected, and not swept since the last collection
  public var idle = false           // a freed large span kept whole (LargeCache, LargeBins): HeapIdle
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Calls body for every arena, span and free run, in address order (heap lock held: body must
  /// not allocate from this heap). An arena region is the heap's memory in one 64 MiB-aligned
  /// region: a range of the heap (HeapArena) cut at arena boundaries.
  public func walkHeap(_ body: (HeapRegion) -> Void) {
    lockAcquire(&pointee.lock)
    defer { lockRelease(&pointee.lock) }
    var it = pointee.ranges
    while let range = it {
      it = range.pointee.next
      var base = range.pointee.base
      while base < range.pointee.end {
        let end = min((base | UInt(heapArenaBytes - 1)) + 1, range.pointee.end)
        body(HeapRegion(kind: .arena, base: base, npages: Int(end - base) >> pageShift))
        walkPages(base, end, body)
        base = end
      }
    }
  }

  /// The spans and free runs of [base, end), part of one arena (heap lock held).
  private func walkPages(_ base: UInt, _ end: UInt, _ body: (HeapRegion) -> Void) {
    let pa = pointee.pages
    var addr = base
    while addr < end {
      let ci = Int(addr >> UInt(logChunkBytes))
      let pi = Int((addr >> UInt(pageShift)) & UInt(chunkPages - 1))
      let c = pa.chunk(ci).unsafelyUnwrapped  // heap memory: its chunk has a record
      let bit: UInt64 = 1 << UInt64(pi & 63)
      let isFree = c[Chunk.free + (pi >> 6)] & bit != 0
      if !isFree, let s = spanOfIndex(UnsafeMutableRawPointer(pointee.arenas), addr),
         s.pointee.startAddr == addr {
        let fs = atomicLoad64(&s.pointee.freeState)
        // (A thread's bins take and give back spans without the heap lock: a snapshot.)
        let st = atomicLoad32(&s.pointee.state)
        var r = HeapRegion(kind: .span, base: addr, npages: s.pointee.npages,
                           spanclass: Int(s.pointee.spanclass), elemsize: s.pointee.elemsize,
                           nelems: s.pointee.nelems,
                           allocated: s.isLarge ? (st == spanInUse ? 1 : 0) : s.liveObjects,
                           cached: fs & fsCached != 0, onPartialList: fs & fsPartial != 0)
        r.idle = s.isLarge && (st == spanCached || st == spanBinned)
        if s.pointee.collected != 0, let gc = gcExisting {
          // (Its lists and sweep state change under its central lock: a snapshot.)
          let sg = atomicLoad32(&s.pointee.sweepgen), h = atomicLoad32(&gc.pointee.sweepgen)
          r.collected = true
          r.cached = atomicLoadRelaxedUInt(&s.pointee.owner) != 0
          r.onPartialList = s.pointee.list == gcListCode(full: false, parity: 0) || s.pointee.list == gcListCode(full: false, parity: 1)
          r.unswept = !r.cached && sg != h && sg != h &+ 3
        }
        body(r)
        addr += UInt(s.pointee.npages * pageSize)
        continue
      }
      // A run of free pages (or pages the scavenger holds for an instant, or the tail of a span
      // that began in the previous arena), same released state.
      let released = !isFree || c[Chunk.scav + (pi >> 6)] & bit != 0
      var n = 1
      while addr + UInt(n * pageSize) < end {
        let a2 = addr + UInt(n * pageSize)
        let ci2 = Int(a2 >> UInt(logChunkBytes))
        let pi2 = Int((a2 >> UInt(pageShift)) & UInt(chunkPages - 1))
        guard let c2 = pa.chunk(ci2) else { break }
        let b2: UInt64 = 1 << UInt64(pi2 & 63)
        let free2 = c2[Chunk.free + (pi2 >> 6)] & b2 != 0
        if !free2 && spanOfIndex(UnsafeMutableRawPointer(pointee.arenas), a2) != nil { break }
        let rel2 = !free2 || c2[Chunk.scav + (pi2 >> 6)] & b2 != 0
        if rel2 != released { break }
        n += 1
      }
      body(HeapRegion(kind: .free, base: addr, npages: n, released: released))
      addr += UInt(n * pageSize)
    }
  }

  /// Writes the heap map text format (see above) to fd.
  public func writeHeapMap(to fd: Int32) {
    writeStatic(fd, "# goalloc heapmap v1\n")
    walkHeap { r in
      switch r.kind {
      case .arena:
        writeStatic(fd, "arena "); goalloc_write_hex(fd, UInt64(r.base)); writeStatic(fd, " ")
        goalloc_write_u64(fd, UInt64(r.npages * pageSize)); writeStatic(fd, "\n")
      case .span:
        func num(_ v: Int) { writeStatic(fd, " "); goalloc_write_u64(fd, UInt64(v)) }
        writeStatic(fd, "span "); goalloc_write_hex(fd, UInt64(r.base))
        num(r.npages); num(r.spanclass); num(r.elemsize); num(r.nelems); num(r.allocated)
        if r.collected {
          writeStatic(fd, SpanClass(index: r.spanclass).isLarge ? " gclarge\n" : r.cached ? " gccached\n"
                          : r.unswept ? " gcunswept\n" : r.onPartialList ? " gcpartial\n" : " gcfull\n")
        } else {
          writeStatic(fd, SpanClass(index: r.spanclass).isLarge ? (r.idle ? " idle\n" : " large\n") : r.cached ? " cached\n"
                          : r.onPartialList ? " partial\n" : " full\n")
        }
      case .free:
        writeStatic(fd, "free "); goalloc_write_hex(fd, UInt64(r.base)); writeStatic(fd, " ")
        goalloc_write_u64(fd, UInt64(r.npages)); writeStatic(fd, r.released ? " 1\n" : " 0\n")
      }
    }
  }
}

/// Where heap memory goes besides live objects (one size class, or the whole heap).
public struct Fragmentation {
  public var spans = 0
  public var slots = 0
  public var allocatedSlots = 0
  public var freeSlotBytes = 0      // free slots in spans that also hold objects (partly filled)
  public var emptySpanBytes = 0     // spans with no object at all (cached or parked)
  public var tailBytes = 0          // span bytes past the last slot
  public var freePageBytes = 0      // free pages held (not returned to the OS)
  public var releasedBytes = 0      // free pages returned to the OS
  public init() {}
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Totals over the heap; `perClass`, when given, receives 68 entries (index = size class, 0 =
  /// large objects). Tiny blocks count in class 2.
  public func fragmentation(perClass: UnsafeMutablePointer<Fragmentation>? = nil) -> Fragmentation {
    var total = Fragmentation()
    if let perClass { for i in 0..<numSizeClasses { perClass[i] = Fragmentation() } }
    // Spans from the registry; free pages from the page allocator's counters (the page walk of
    // walkHeap is only needed for addresses).
    lockAcquire(&pointee.lock)
    forEachSpanLocked { s in
      let inUse = atomicLoad32(&s.pointee.state) == spanInUse
      let allocated = s.isLarge ? (inUse ? 1 : 0) : s.liveObjects
      var f = Fragmentation()
      f.spans = 1
      f.slots = s.pointee.nelems
      f.allocatedSlots = allocated
      let free = (s.pointee.nelems - allocated) * s.pointee.elemsize
      if allocated == 0 { f.emptySpanBytes = s.pointee.npages * pageSize } else { f.freeSlotBytes = free }
      f.tailBytes = s.pointee.npages * pageSize - s.pointee.nelems * s.pointee.elemsize
      total.add(f)
      perClass?[s.spanClass.sizeclass].add(f)
    }
    let pa = pointee.pages
    total.freePageBytes = (pa.freePages - pa.scavPages) * pageSize
    total.releasedBytes = pa.scavPages * pageSize
    lockRelease(&pointee.lock)
    return total
  }
}

extension Fragmentation {
  mutating func add(_ o: Fragmentation) {
    spans += o.spans; slots += o.slots; allocatedSlots += o.allocatedSlots
    freeSlotBytes += o.freeSlotBytes; emptySpanBytes += o.emptySpanBytes; tailBytes += o.tailBytes
    freePageBytes += o.freePageBytes; releasedBytes += o.releasedBytes
  }
}
