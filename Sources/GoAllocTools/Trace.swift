// Allocation traces (GOALLOC_DEBUG=allocfreetrace=FILE): a streaming reader, a summary, and the
// compact op list that `goalloc trace replay` feeds to its replay program.
//
// The text format (GoAllocCore/AllocTrace.swift):
//   # goalloc allocfreetrace v1
//   a <tid> <addr> <size> <class> [<pc> ...]    allocation of <size> requested bytes
//   f <tid> <addr> [<pc> ...]                   free
//   # map <start> <end> <offset> <path>        at the end: executable mappings (tracestack=1)
// Allocations made before tracing began are not in the trace, but their frees are: a free of an
// address that is not live in the trace is counted as `unknownFrees` and otherwise ignored. An
// allocation at an address that is still live (a free the trace missed) replaces the old object.
//
// Replay op list (little endian; `ReplayOps`):
//   "GAREPLAY" u64 ops, u64 slots, u64 live_objects, u64 live_bytes, then per op the LEB128
//   varint (slot << 1 | is_free) and, for an allocation, the varint size.
// Slots are small integers reused after a free, so the replay program keeps a table of `slots`
// pointers instead of a hash of addresses.
import GoAllocCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct AllocationTraceEvent: Sendable {
  public enum Kind: Sendable { case alloc, free }
  public var kind: Kind
  public var thread: Int
  public var address: UInt
  /// Requested bytes (allocations).
  public var size: Int
  /// Size class (allocations; 0: large object).
  public var sizeClass: Int
  /// Return addresses, innermost first (empty without tracestack=1).
  public var stack: [UInt]
}

/// A collection of the GC mode, from a `g` line (AllocTrace.swift has the format).
public struct TraceCollection: Sendable, Equatable {
  public var number: Int
  /// Nanoseconds since the GC mode started.
  public var timeNs: Int
  public var heapBefore: Int
  public var heapAfter: Int
  public var marked: Int
  public var goal: Int
  public var pauseNs: Int
  public var forced: Bool
  /// How many allocation and free events came before it in the trace.
  public var afterEvents: Int

  public init(number: Int, timeNs: Int, heapBefore: Int, heapAfter: Int, marked: Int, goal: Int, pauseNs: Int,
              forced: Bool, afterEvents: Int) {
    self.number = number
    self.timeNs = timeNs
    self.heapBefore = heapBefore
    self.heapAfter = heapAfter
    self.marked = marked
    self.goal = goal
    self.pauseNs = pauseNs
    self.forced = forced
    self.afterEvents = afterEvents
  }
}

/// An executable mapping from a `# map` line: pc - start + offset is the file offset in `path`.
public struct TraceMapping: Sendable, Equatable {
  public var start: UInt
  public var end: UInt
  public var offset: UInt
  public var path: String

  public func contains(_ pc: UInt) -> Bool { pc >= start && pc < end }
  public func fileOffset(_ pc: UInt) -> UInt { pc - start + offset }
  public var name: String { path.split(separator: "/").last.map(String.init) ?? path }
}

public struct AllocationTraceError: Error, CustomStringConvertible, Sendable {
  public var line: Int
  public var message: String
  public var description: String { line > 0 ? "trace line \(line): \(message)" : message }
}

public enum AllocationTrace {
  public static let header = "# goalloc allocfreetrace v1"

  /// Calls `body` for every event of the trace file at `path`, in order; returns its mappings.
  /// An unterminated last line that does not parse (a trace cut short) is ignored.
  @discardableResult
  public static func read(path: String, _ body: (AllocationTraceEvent) throws -> Void) throws -> [TraceMapping] {
    try readAll(path: path, body).mappings
  }

  /// `read`, also returning the trace's collections (`g` lines), in order.
  public static func readAll(path: String, _ body: (AllocationTraceEvent) throws -> Void) throws
    -> (mappings: [TraceMapping], collections: [TraceCollection]) {
    guard let f = fopen(path, "rb") else {
      throw AllocationTraceError(line: 0, message: "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(f) }
    var reader = LineParser()
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var carry: [UInt8] = []
    while true {
      let n = fread(&chunk, 1, chunk.count, f)
      if n == 0 {
        if ferror(f) != 0 {
          throw AllocationTraceError(line: 0, message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        break
      }
      // Lines that end in this chunk; the unterminated rest waits for the next one.
      var lastNewline = -1
      for i in stride(from: n - 1, through: 0, by: -1) where chunk[i] == 0x0A { lastNewline = i; break }
      if lastNewline < 0 {
        carry.append(contentsOf: chunk[..<n])
        continue
      }
      if !carry.isEmpty {
        carry.append(contentsOf: chunk[...lastNewline])
        try carry.withUnsafeBufferPointer { try reader.feed($0, final: false, body) }
        carry.removeAll(keepingCapacity: true)
      } else {
        try chunk.withUnsafeBufferPointer { try reader.feed(UnsafeBufferPointer(rebasing: $0[...lastNewline]), final: false, body) }
      }
      carry.append(contentsOf: chunk[(lastNewline + 1)..<n])
    }
    if !carry.isEmpty {
      try carry.withUnsafeBufferPointer { try reader.feed($0, final: true, body) }
    }
    try reader.finish()
    return (reader.mappings, reader.collections)
  }

  /// The same for a trace held in a string.
  @discardableResult
  public static func read(text: String, _ body: (AllocationTraceEvent) throws -> Void) throws -> [TraceMapping] {
    try readAll(text: text, body).mappings
  }

  public static func readAll(text: String, _ body: (AllocationTraceEvent) throws -> Void) throws
    -> (mappings: [TraceMapping], collections: [TraceCollection]) {
    var reader = LineParser()
    var bytes = Array(text.utf8)
    let terminated = bytes.last == 0x0A
    if !terminated { bytes.append(0x0A) }
    try bytes.withUnsafeBufferPointer { try reader.feed($0, final: !terminated, body) }
    try reader.finish()
    return (reader.mappings, reader.collections)
  }
}

/// Parses whole lines of the trace format.
struct LineParser {
  var lineNo = 0
  var sawHeader = false
  var mappings: [TraceMapping] = []
  var collections: [TraceCollection] = []
  var events = 0
  var event = AllocationTraceEvent(kind: .alloc, thread: 0, address: 0, size: 0, sizeClass: 0, stack: [])

  /// `buf` holds complete lines (each ends in "\n"); with `final`, its last line was unterminated
  /// in the file and is dropped if it does not parse.
  mutating func feed(_ buf: UnsafeBufferPointer<UInt8>, final: Bool,
                     _ body: (AllocationTraceEvent) throws -> Void) throws {
    var start = 0
    let n = buf.count
    while start < n {
      var end = start
      while end < n && buf[end] != 0x0A { end += 1 }
      lineNo += 1
      let isLast = end + 1 >= n
      do {
        try line(buf, start, end, body)
      } catch let e as AllocationTraceError where final && isLast {
        _ = e  // a trace cut short mid-line
      }
      start = end + 1
    }
  }

  func finish() throws {
    if !sawHeader && lineNo > 0 {
      throw AllocationTraceError(line: 0, message: "not an allocation trace (no \"\(AllocationTrace.header)\" line)")
    }
    if lineNo == 0 {
      throw AllocationTraceError(line: 0, message: "the trace is empty (no \"\(AllocationTrace.header)\" line)")
    }
  }

  mutating func line(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int,
                     _ body: (AllocationTraceEvent) throws -> Void) throws {
    var i = s
    var end = e
    if end > s && b[end - 1] == 0x0D { end -= 1 }
    if i == end { return }
    func fail(_ why: String) -> AllocationTraceError {
      AllocationTraceError(line: lineNo, message: "\(why): \(String(decoding: UnsafeBufferPointer(rebasing: b[s..<end]), as: UTF8.self))")
    }
    func skipSpaces() { while i < end && b[i] == 0x20 { i += 1 } }
    func decimal() throws -> Int {
      skipSpaces()
      var v = 0, digits = 0
      while i < end, b[i] >= 0x30, b[i] <= 0x39 {
        v = v &* 10 &+ Int(b[i] - 0x30); i += 1; digits += 1
      }
      if digits == 0 || (i < end && b[i] != 0x20) { throw fail("expected a number") }
      return v
    }
    func hex() throws -> UInt {
      skipSpaces()
      guard i + 1 < end, b[i] == 0x30, b[i + 1] == 0x78 || b[i + 1] == 0x58 else { throw fail("expected a 0x-hex number") }
      i += 2
      var v: UInt = 0, digits = 0
      while i < end {
        let c = b[i]
        let d: UInt
        if c >= 0x30 && c <= 0x39 { d = UInt(c - 0x30) }
        else if c >= 0x61 && c <= 0x66 { d = UInt(c - 0x61 + 10) }
        else if c >= 0x41 && c <= 0x46 { d = UInt(c - 0x41 + 10) }
        else { break }
        v = v &<< 4 | d; i += 1; digits += 1
      }
      if digits == 0 || (i < end && b[i] != 0x20) { throw fail("expected a 0x-hex number") }
      return v
    }
    func stack() throws {
      event.stack.removeAll(keepingCapacity: true)
      skipSpaces()
      while i < end {
        event.stack.append(try hex())
        skipSpaces()
      }
    }

    switch b[i] {
    case 0x23:  // '#'
      let text = String(decoding: UnsafeBufferPointer(rebasing: b[s..<end]), as: UTF8.self)
      if text == AllocationTrace.header { sawHeader = true; return }
      if text.hasPrefix("# map ") {
        i += 6
        let start = try hex(), stop = try hex(), off = try hex()
        skipSpaces()
        let path = String(decoding: UnsafeBufferPointer(rebasing: b[i..<end]), as: UTF8.self)
        mappings.append(TraceMapping(start: start, end: stop, offset: off, path: path))
      }
    case 0x61:  // 'a'
      guard sawHeader else { throw fail("event before the \"\(AllocationTrace.header)\" line") }
      guard i + 1 < end, b[i + 1] == 0x20 else { throw fail("unknown event") }
      i += 1
      event.kind = .alloc
      event.thread = try decimal()
      event.address = try hex()
      event.size = try decimal()
      event.sizeClass = try decimal()
      try stack()
      events += 1
      try body(event)
    case 0x66:  // 'f'
      guard sawHeader else { throw fail("event before the \"\(AllocationTrace.header)\" line") }
      guard i + 1 < end, b[i + 1] == 0x20 else { throw fail("unknown event") }
      i += 1
      event.kind = .free
      event.thread = try decimal()
      event.address = try hex()
      event.size = 0
      event.sizeClass = 0
      try stack()
      events += 1
      try body(event)
    case 0x67:  // 'g': a collection
      guard sawHeader else { throw fail("event before the \"\(AllocationTrace.header)\" line") }
      guard i + 1 < end, b[i + 1] == 0x20 else { throw fail("unknown event") }
      i += 1
      let n = try decimal(), ns = try decimal(), before = try decimal(), after = try decimal()
      let marked = try decimal(), goal = try decimal(), pause = try decimal(), forced = try decimal()
      skipSpaces()
      if i != end { throw fail("unexpected text after a collection") }
      collections.append(TraceCollection(number: n, timeNs: ns, heapBefore: before, heapAfter: after, marked: marked,
                                         goal: goal, pauseNs: pause, forced: forced != 0, afterEvents: events))
    default:
      throw fail("unknown event")
    }
  }
}

// MARK: - Summary

public struct AllocationTraceSummary: Sendable {
  public var events = 0
  public var allocations = 0
  public var frees = 0
  /// Frees of addresses that were not live in the trace (allocated before tracing began).
  public var unknownFrees = 0
  /// Allocations at an address still live in the trace (the old object counts as freed).
  public var replacedLive = 0
  public var threads = 0
  public var bytesRequested = 0
  public var hasStacks = false

  public struct ClassRow: Sendable, Equatable {
    public var sizeClass: Int
    public var slotSize: Int
    public var allocations: Int
    public var bytes: Int
  }
  /// Allocations per size class (1...67), in class order; classes with none are left out.
  public var classes: [ClassRow] = []

  public struct LargeRow: Sendable, Equatable {
    /// Sizes in [lower, upper).
    public var lower: Int
    public var upper: Int
    public var allocations: Int
    public var bytes: Int
  }
  /// Large objects (class 0) by power-of-two size buckets.
  public var large: [LargeRow] = []

  /// Lifetimes of freed objects, in trace events from allocation to free.
  public struct Lifetimes: Sendable, Equatable {
    public var count: Int
    public var p50: Int, p90: Int, p99: Int, max: Int
    public var mean: Double
  }
  public var lifetimes: Lifetimes?

  public var liveObjects = 0
  public var liveBytes = 0
  public var peakLiveObjects = 0
  public var peakLiveBytes = 0
  /// Event index (0-based) where the live bytes peaked.
  public var peakEvent = 0

  /// An allocation site: the innermost frame of the allocation's stack outside libgoalloc.so.
  public struct Site: Sendable, Equatable {
    /// 0 when the recorded stack had no frame outside libgoalloc.so (it was not unwound).
    public var pc: UInt
    /// The most frequent caller of `pc` among its allocations (0: none).
    public var caller: UInt
    public var allocations: Int
    public var bytes: Int
    public var liveObjects: Int
    public var liveBytes: Int
  }
  /// Allocation sites by bytes requested, largest first (with stacks only).
  public var sites: [Site] = []
  public var mappings: [TraceMapping] = []
  /// The GC mode's collections (`g` lines), in order.
  public var collections: [TraceCollection] = []

  public init() {}

  /// Reads and summarizes the trace at `path`.
  public init(path: String) throws {
    var b = Builder()
    let r = try AllocationTrace.readAll(path: path) { b.add($0) }
    self = b.finish(mappings: r.mappings)
    collections = r.collections
  }

  /// Summarizes a trace held in a string.
  public init(text: String) throws {
    var b = Builder()
    let r = try AllocationTrace.readAll(text: text) { b.add($0) }
    self = b.finish(mappings: r.mappings)
    collections = r.collections
  }

  /// The mapping that holds `pc`.
  public func mapping(of pc: UInt) -> TraceMapping? { mappings.first { $0.contains(pc) } }

  struct StackKey: Hashable { var a: UInt, b: UInt, c: UInt, d: UInt }
  struct SiteStats { var allocations = 0, bytes = 0, liveObjects = 0, liveBytes = 0 }
  struct Live { var event: Int; var size: Int; var key: StackKey? }

  struct Builder {
    var s = AllocationTraceSummary()
    var live: [UInt: Live] = [:]
    var threads: Set<Int> = []
    var byClass = [Int](repeating: 0, count: 70)
    var bytesByClass = [Int](repeating: 0, count: 70)
    var largeBuckets: [Int: (Int, Int)] = [:]
    var lifetimes: [Int] = []
    var stacks: [StackKey: SiteStats] = [:]

    mutating func add(_ e: AllocationTraceEvent) {
      let index = s.events
      s.events += 1
      threads.insert(e.thread)
      switch e.kind {
      case .alloc:
        s.allocations += 1
        s.bytesRequested += e.size
        if e.sizeClass > 0 && e.sizeClass < byClass.count {
          byClass[e.sizeClass] += 1
          bytesByClass[e.sizeClass] += e.size
        } else {
          var lower = 1
          while lower * 2 <= e.size { lower *= 2 }
          let v = largeBuckets[lower] ?? (0, 0)
          largeBuckets[lower] = (v.0 + 1, v.1 + e.size)
        }
        var key: StackKey? = nil
        if !e.stack.isEmpty {
          s.hasStacks = true
          let st = e.stack
          key = StackKey(a: st[0], b: st.count > 1 ? st[1] : 0, c: st.count > 2 ? st[2] : 0, d: st.count > 3 ? st[3] : 0)
          var v = stacks[key!] ?? SiteStats()
          v.allocations += 1
          v.bytes += e.size
          v.liveObjects += 1
          v.liveBytes += e.size
          stacks[key!] = v
        }
        if let old = live[e.address] {
          s.replacedLive += 1
          drop(old)
        }
        live[e.address] = Live(event: index, size: e.size, key: key)
        s.liveObjects += 1
        s.liveBytes += e.size
        if s.liveBytes > s.peakLiveBytes {
          s.peakLiveBytes = s.liveBytes
          s.peakEvent = index
        }
        s.peakLiveObjects = max(s.peakLiveObjects, s.liveObjects)
      case .free:
        s.frees += 1
        guard let old = live.removeValue(forKey: e.address) else {
          s.unknownFrees += 1
          return
        }
        lifetimes.append(index - old.event)
        drop(old)
      }
    }

    mutating func drop(_ old: Live) {
      s.liveObjects -= 1
      s.liveBytes -= old.size
      if let k = old.key, var v = stacks[k] {
        v.liveObjects -= 1
        v.liveBytes -= old.size
        stacks[k] = v
      }
    }

    mutating func finish(mappings: [TraceMapping]) -> AllocationTraceSummary {
      s.threads = threads.count
      s.mappings = mappings
      for c in 1..<byClass.count where byClass[c] > 0 {
        let slot = c < numSizeClasses ? SizeClassInfo.size(ofClass: c) : 0
        s.classes.append(.init(sizeClass: c, slotSize: slot, allocations: byClass[c], bytes: bytesByClass[c]))
      }
      for (lower, v) in largeBuckets.sorted(by: { $0.key < $1.key }) {
        s.large.append(.init(lower: lower, upper: lower * 2, allocations: v.0, bytes: v.1))
      }
      if !lifetimes.isEmpty {
        lifetimes.sort()
        func pct(_ p: Double) -> Int {
          lifetimes[min(lifetimes.count - 1, Int((Double(lifetimes.count) * p).rounded(.up)) - 1)]
        }
        let sum = lifetimes.reduce(0.0) { $0 + Double($1) }
        s.lifetimes = Lifetimes(count: lifetimes.count, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99),
                                max: lifetimes.last!, mean: sum / Double(lifetimes.count))
      }
      // Sites: the innermost frame outside libgoalloc.so; its most frequent caller.
      let own = mappings.filter { $0.name.hasPrefix("libgoalloc") }
      func isOwn(_ pc: UInt) -> Bool { own.contains { $0.contains(pc) } }
      var sites: [UInt: (SiteStats, [UInt: Int])] = [:]
      for (k, v) in stacks {
        var frames = [k.a, k.b, k.c, k.d].filter { $0 != 0 }
        while let f = frames.first, isOwn(f) { frames.removeFirst() }
        let pc = frames.first ?? 0  // 0: no frame outside the allocator was recorded
        let caller = frames.count > 1 ? frames[1] : 0
        var entry = sites[pc] ?? (SiteStats(), [:])
        entry.0.allocations += v.allocations
        entry.0.bytes += v.bytes
        entry.0.liveObjects += v.liveObjects
        entry.0.liveBytes += v.liveBytes
        entry.1[caller, default: 0] += v.allocations
        sites[pc] = entry
      }
      s.sites = sites.map { pc, v in
        let caller = v.1.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key ?? 0
        return Site(pc: pc, caller: caller, allocations: v.0.allocations, bytes: v.0.bytes,
                    liveObjects: v.0.liveObjects, liveBytes: v.0.liveBytes)
      }.sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.pc < $1.pc }
      return s
    }
  }
}

// MARK: - Replay op list

public struct ReplayOps: Sendable {
  public static let magic: [UInt8] = Array("GAREPLAY".utf8)
  /// The encoded op list (header and ops).
  public var bytes: [UInt8] = []
  public var ops = 0
  public var allocations = 0
  public var frees = 0
  /// Frees of addresses not live in the trace: left out.
  public var skippedFrees = 0
  /// Slot table size the replay needs (the most objects live at once).
  public var slots = 0
  /// The live set at the end of the trace (what the replay must end with).
  public var liveObjects = 0
  public var liveBytes = 0

  public init() {}

  /// Converts the trace at `path`.
  public init(tracePath path: String) throws {
    var b = Builder()
    try AllocationTrace.read(path: path) { b.add($0) }
    self = b.finish()
  }

  /// Converts a trace held in a string.
  public init(traceText text: String) throws {
    var b = Builder()
    try AllocationTrace.read(text: text) { b.add($0) }
    self = b.finish()
  }

  struct Builder {
    var r = ReplayOps()
    var body: [UInt8] = []
    var slotOf: [UInt: (slot: Int, size: Int)] = [:]
    var freeSlots: [Int] = []
    var nextSlot = 0

    mutating func varint(_ v: UInt64) {
      var v = v
      while v >= 0x80 {
        body.append(UInt8(v & 0x7F) | 0x80)
        v >>= 7
      }
      body.append(UInt8(v))
    }

    mutating func free(_ slot: Int, size: Int) {
      varint(UInt64(slot) << 1 | 1)
      freeSlots.append(slot)
      r.ops += 1
      r.frees += 1
      r.liveObjects -= 1
      r.liveBytes -= size
    }

    mutating func add(_ e: AllocationTraceEvent) {
      switch e.kind {
      case .alloc:
        if let old = slotOf[e.address] { free(old.slot, size: old.size) }
        let slot: Int
        if let s = freeSlots.popLast() { slot = s } else { slot = nextSlot; nextSlot += 1 }
        slotOf[e.address] = (slot, e.size)
        varint(UInt64(slot) << 1)
        varint(UInt64(e.size))
        r.ops += 1
        r.allocations += 1
        r.liveObjects += 1
        r.liveBytes += e.size
      case .free:
        guard let old = slotOf.removeValue(forKey: e.address) else {
          r.skippedFrees += 1
          return
        }
        free(old.slot, size: old.size)
      }
    }

    mutating func finish() -> ReplayOps {
      r.slots = nextSlot
      var out = ReplayOps.magic
      func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { out.append(contentsOf: $0) } }
      u64(r.ops); u64(r.slots); u64(r.liveObjects); u64(r.liveBytes)
      out.append(contentsOf: body)
      r.bytes = out
      return r
    }
  }
}
