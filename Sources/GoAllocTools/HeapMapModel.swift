// HeapMap: the heap map as values — read from the "# goalloc heapmap v1" text that
// GOALLOC_DEBUG=heapmap=FILE and goalloc_write_heapmap() write, or taken from this process's heap
// with walkHeap. `HeapMapSVG` draws one.
//
// The text format (GoAllocCore/HeapMap.swift):
//   # goalloc heapmap v1
//   arena <base> <bytes>
//   span <base> <npages> <spanclass> <elemsize> <nelems> <allocated> <where>
//   free <base> <npages> <released>
// Addresses 0x-hex, the rest decimal; spanclass = sizeclass << 1 | noscan (0/1: large, 136: tiny
// blocks); where = cached | partial | full | large, or for the GC mode's collected spans gccached |
// gcpartial | gcfull | gcunswept | gclarge; released = 0 | 1.
//
// A large span can run past the end of its arena into the next one. The regions that the walk
// reports inside such a span's tail (they are not free pages) are dropped here, so every page is
// counted once: see `normalizeContinuations`.
import GoAllocCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct HeapMap: Sendable, Equatable {
  /// Bytes per heap page (Go's 8 KiB).
  public static let pageBytes = 8192
  /// The span class of the tiny allocator's 16-byte blocks.
  public static let tinySpanClass = SpanClass.tiny.index  // 136

  /// Where an in-use span is: owned by a thread (its current span or on its ready list), on its
  /// mcentral's partial list, full and owned by nobody ("full": floating), or a large object;
  /// a freed large span kept whole for reuse ("idle": the heap's LargeCache or a thread's
  /// LargeBins; its pages count as idle, as in MemStats' HeapIdle);
  /// the GC mode's collected spans: held by a thread's GC cache, swept with free slots, swept
  /// and full, not swept since the last collection, or a large collected object.
  public enum SpanState: String, Sendable, Equatable {
    case cached, partial, full, large, idle
    case gccached, gcpartial, gcfull, gcunswept, gclarge
    /// A GC mode span (collected objects).
    public var isCollected: Bool { rawValue.hasPrefix("gc") }
  }

  /// A span: `npages` pages from `base`, cut into `nelems` slots of `elemSize` bytes of which
  /// `allocated` are handed out (a large span is one slot).
  public struct Span: Sendable, Equatable {
    public var base: UInt
    public var npages: Int
    public var spanClass: Int
    public var elemSize: Int
    public var nelems: Int
    public var allocated: Int
    public var state: SpanState

    public init(base: UInt, npages: Int, spanClass: Int, elemSize: Int, nelems: Int, allocated: Int,
                state: SpanState) {
      self.base = base
      self.npages = npages
      self.spanClass = spanClass
      self.elemSize = elemSize
      self.nelems = nelems
      self.allocated = allocated
      self.state = state
    }

    /// Go's size class (1...67), 0 for a large object, 68 for tiny blocks.
    public var sizeClass: Int { spanClass >> 1 }
    public var isLarge: Bool { spanClass >> 1 == 0 }
    public var isTiny: Bool { spanClass == HeapMap.tinySpanClass }
    public var noscan: Bool { spanClass & 1 == 1 }
    public var bytes: Int { npages * HeapMap.pageBytes }
    public var end: UInt { base + UInt(bytes) }
    /// allocated / nelems, in 0...1.
    public var fullness: Double { nelems > 0 ? min(1, Double(allocated) / Double(nelems)) : 0 }
    /// Bytes in allocated slots.
    public var allocatedBytes: Int { allocated * elemSize }
  }

  /// A run of pages in no span; `released` pages were given back to the OS (or never touched).
  public struct FreeRun: Sendable, Equatable {
    public var base: UInt
    public var npages: Int
    public var released: Bool

    public init(base: UInt, npages: Int, released: Bool) {
      self.base = base
      self.npages = npages
      self.released = released
    }

    public var bytes: Int { npages * HeapMap.pageBytes }
    public var end: UInt { base + UInt(bytes) }
  }

  public enum Region: Sendable, Equatable {
    case span(Span)
    case free(FreeRun)

    public var base: UInt {
      switch self { case .span(let s): return s.base; case .free(let f): return f.base }
    }
    public var npages: Int {
      switch self { case .span(let s): return s.npages; case .free(let f): return f.npages }
    }
    public var end: UInt { base + UInt(npages * HeapMap.pageBytes) }
  }

  /// A heap arena (64 MiB) and its regions in address order.
  public struct Arena: Sendable, Equatable {
    public var base: UInt
    public var bytes: Int
    public var regions: [Region]

    public init(base: UInt, bytes: Int, regions: [Region] = []) {
      self.base = base
      self.bytes = bytes
      self.regions = regions
    }

    public var pages: Int { bytes / HeapMap.pageBytes }
    public var end: UInt { base + UInt(bytes) }
  }

  public var arenas: [Arena]

  public init(arenas: [Arena]) {
    self.arenas = arenas
    normalizeContinuations()
  }

  /// Every span, in address order.
  public var spans: [Span] {
    arenas.flatMap { $0.regions.compactMap { if case .span(let s) = $0 { return s } else { return nil } } }
  }

  /// Every free run, in address order.
  public var freeRuns: [FreeRun] {
    arenas.flatMap { $0.regions.compactMap { if case .free(let f) = $0 { return f } else { return nil } } }
  }

  /// Page totals.
  public struct Totals: Sendable, Equatable {
    public var arenas = 0
    public var spans = 0
    public var largeSpans = 0
    public var inUseBytes = 0       // pages in spans (idle spans not included: MemStats' HeapInuse)
    public var idleSpans = 0        // freed large spans kept whole (state idle), not in `spans`
    public var idleSpanBytes = 0    // their pages (in MemStats' HeapIdle with the free and released pages)
    public var allocatedBytes = 0   // allocated slots x slot size
    public var slots = 0
    public var allocatedSlots = 0
    public var freeBytes = 0        // free pages still backed by memory
    public var releasedBytes = 0    // free pages returned to the OS
    public var mappedBytes: Int { inUseBytes + idleSpanBytes + freeBytes + releasedBytes }
  }

  public var totals: Totals {
    var t = Totals()
    t.arenas = arenas.count
    for a in arenas {
      for r in a.regions {
        switch r {
        case .span(let s) where s.state == .idle:
          t.idleSpans += 1
          t.idleSpanBytes += s.bytes
        case .span(let s):
          t.spans += 1
          if s.isLarge { t.largeSpans += 1 }
          t.inUseBytes += s.bytes
          t.allocatedBytes += s.allocatedBytes
          t.slots += s.nelems
          t.allocatedSlots += s.allocated
        case .free(let f):
          if f.released { t.releasedBytes += f.bytes } else { t.freeBytes += f.bytes }
        }
      }
    }
    return t
  }

  /// Drops regions that lie inside a span that started at a lower address (the tail of a large
  /// span that runs into the next arena, which a walk of that arena reports page by page), and
  /// trims a region that starts inside such a tail. A no-op on a map without them.
  mutating func normalizeContinuations() {
    var covered: UInt = 0  // end of the furthest span seen so far
    for ai in arenas.indices {
      var kept: [Region] = []
      kept.reserveCapacity(arenas[ai].regions.count)
      for r in arenas[ai].regions {
        if r.end <= covered { continue }
        if r.base < covered {
          let skip = Int((covered - r.base) / UInt(HeapMap.pageBytes))
          switch r {
          case .span: break  // overlapping spans: keep it as it is
          case .free(var f):
            f.base = covered
            f.npages -= skip
            if f.npages <= 0 { continue }
            kept.append(.free(f))
            continue
          }
        }
        if case .span(let s) = r { covered = max(covered, s.end) }
        kept.append(r)
      }
      arenas[ai].regions = kept
    }
  }
}

// MARK: - Reading the text format

public struct HeapMapParseError: Error, CustomStringConvertible, Sendable, Equatable {
  public var line: Int
  public var message: String
  public var description: String { line > 0 ? "heap map line \(line): \(message)" : "heap map: \(message)" }
}

extension HeapMap {
  public static let header = "# goalloc heapmap v1"

  /// Parses the heap-map text format. Blank lines and other comment lines are skipped; a region
  /// before the first arena line, or a malformed line, is an error.
  public init(parsing text: String) throws(HeapMapParseError) {
    var arenas: [Arena] = []
    var sawHeader = false
    var lineNo = 0
    for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
      lineNo += 1
      let line = raw.hasSuffix("\r") ? raw.dropLast() : raw[...]
      if line.isEmpty { continue }
      if line.hasPrefix("#") {
        if line == HeapMap.header[...] { sawHeader = true }
        continue
      }
      let f = line.split(separator: " ")
      func fail(_ why: String) -> HeapMapParseError { HeapMapParseError(line: lineNo, message: "\(why): \(line)") }
      func hex(_ i: Int) throws(HeapMapParseError) -> UInt {
        guard i < f.count, f[i].hasPrefix("0x"), let v = UInt(f[i].dropFirst(2), radix: 16) else {
          throw fail("field \(i + 1) is not a 0x-hex address")
        }
        return v
      }
      func dec(_ i: Int) throws(HeapMapParseError) -> Int {
        guard i < f.count, let v = Int(f[i]), v >= 0 else { throw fail("field \(i + 1) is not a number") }
        return v
      }
      switch f.first {
      case "arena":
        guard f.count == 3 else { throw fail("an arena line has 3 fields") }
        let bytes = try dec(2)
        guard bytes > 0 && bytes % HeapMap.pageBytes == 0 else { throw fail("arena size is not a whole number of pages") }
        arenas.append(Arena(base: try hex(1), bytes: bytes))
      case "span":
        guard f.count == 8 else { throw fail("a span line has 8 fields") }
        guard let state = SpanState(rawValue: String(f[7])) else { throw fail("unknown span state \(f[7])") }
        let s = Span(base: try hex(1), npages: try dec(2), spanClass: try dec(3), elemSize: try dec(4),
                     nelems: try dec(5), allocated: try dec(6), state: state)
        guard s.npages > 0 else { throw fail("a span has at least one page") }
        guard !arenas.isEmpty else { throw fail("span before the first arena line") }
        arenas[arenas.count - 1].regions.append(.span(s))
      case "free":
        guard f.count == 4, f[3] == "0" || f[3] == "1" else { throw fail("a free line is: free <base> <npages> 0|1") }
        let r = FreeRun(base: try hex(1), npages: try dec(2), released: f[3] == "1")
        guard r.npages > 0 else { throw fail("a free run has at least one page") }
        guard !arenas.isEmpty else { throw fail("free run before the first arena line") }
        arenas[arenas.count - 1].regions.append(.free(r))
      default:
        throw fail("unknown line kind")
      }
    }
    guard sawHeader else {
      throw HeapMapParseError(line: 0, message: "not a heap map (no \"\(HeapMap.header)\" line)")
    }
    self.init(arenas: arenas)
  }

  /// Reads and parses a heap-map file.
  public init(contentsOf path: String) throws(HeapMapParseError) {
    guard let text = readWholeFile(path) else {
      throw HeapMapParseError(line: 0, message: "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    try self.init(parsing: text)
  }

  /// The map in the text format (what `init(parsing:)` reads back).
  public var text: String {
    var out = HeapMap.header + "\n"
    func hex(_ v: UInt) -> String { "0x" + String(v, radix: 16) }
    for a in arenas {
      out += "arena \(hex(a.base)) \(a.bytes)\n"
      for r in a.regions {
        switch r {
        case .span(let s):
          out += "span \(hex(s.base)) \(s.npages) \(s.spanClass) \(s.elemSize) \(s.nelems) \(s.allocated) \(s.state.rawValue)\n"
        case .free(let f):
          out += "free \(hex(f.base)) \(f.npages) \(f.released ? 1 : 0)\n"
        }
      }
    }
    return out
  }
}

// MARK: - This process's heap

extension HeapMap {
  /// The map of `heap`, walked under its lock (allocation waits meanwhile).
  public init(walking heap: UnsafeMutablePointer<MHeap>) {
    var arenas: [Arena] = []
    // The walk holds the heap lock: the closure must not allocate from `heap` (Swift's own
    // allocations go to the system malloc, never to GoAlloc's heap).
    heap.walkHeap { r in
      switch r.kind {
      case .arena:
        arenas.append(Arena(base: r.base, bytes: r.npages * HeapMap.pageBytes))
      case .span:
        let large = SpanClass(index: r.spanclass).isLarge
        let state: SpanState = r.collected
          ? (large ? .gclarge : r.cached ? .gccached : r.unswept ? .gcunswept : r.onPartialList ? .gcpartial : .gcfull)
          : (large ? (r.idle ? .idle : .large) : r.cached ? .cached : r.onPartialList ? .partial : .full)
        arenas[arenas.count - 1].regions.append(.span(Span(
          base: r.base, npages: r.npages, spanClass: r.spanclass, elemSize: r.elemsize, nelems: r.nelems,
          allocated: r.allocated, state: state)))
      case .free:
        arenas[arenas.count - 1].regions.append(.free(FreeRun(base: r.base, npages: r.npages, released: r.released)))
      }
    }
    self.init(arenas: arenas)
  }

  /// The map of the process-wide heap that `GoAlloc.allocate` uses (empty before its first use).
  public static func current() -> HeapMap {
    guard let h = globalHeap() else { return HeapMap(arenas: []) }
    return HeapMap(walking: h)
  }
}

/// The whole file at `path` as UTF-8 text, or nil (errno set).
func readWholeFile(_ path: String) -> String? {
  guard let f = fopen(path, "rb") else { return nil }
  defer { fclose(f) }
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 1 << 16)
  while true {
    let n = fread(&chunk, 1, chunk.count, f)
    if n > 0 { bytes.append(contentsOf: chunk[..<n]) }
    if n < chunk.count {
      if ferror(f) != 0 { return nil }
      break
    }
  }
  return String(decoding: bytes, as: UTF8.self)
}
