// The heap map as values (HeapMap), its text format, and the SVG drawing (HeapMapSVG).
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import GoAlloc
import GoAllocCore
import GoAllocTools
import Testing

/// Runs `body` holding the global-heap test lock (tests comparing global counters serialize on it,
/// so our allocations must not run during theirs), passing its errors through.
func exclusively<T>(_ body: () throws -> T) throws -> T {
  try _withExclusiveGlobalHeapForTesting { Result { try body() } }.get()
}

/// Parses SVG text as XML and counts elements by their class attribute.
final class SVGCensus: NSObject, XMLParserDelegate {
  var byClass: [String: Int] = [:]
  var spanFills: [String] = []
  var spanPathsWithoutD = 0
  var texts: [String] = []
  private var inText = false
  private var currentText = ""

  /// nil when the text is not well-formed XML.
  static func take(_ svg: String) -> SVGCensus? {
    let parser = XMLParser(data: Data(svg.utf8))
    let census = SVGCensus()
    parser.delegate = census
    return parser.parse() ? census : nil
  }

  func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
              qualifiedName qName: String?, attributes: [String: String] = [:]) {
    if let c = attributes["class"] { byClass[c, default: 0] += 1 }
    if elementName == "path" && attributes["class"] == "span" {
      spanFills.append(attributes["fill"] ?? "")
      if (attributes["d"] ?? "").isEmpty { spanPathsWithoutD += 1 }
    }
    if elementName == "text" { inText = true; currentText = "" }
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) {
    if inText { currentText += string }
  }

  func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
    if elementName == "text" { inText = false; texts.append(currentText) }
  }
}

@Suite("heap map and its SVG", .serialized)
struct HeapMapTests {
  /// Objects in distinct size classes, held while the heap is walked.
  static let requests: [(size: Int, count: Int)] = [(48, 40), (1024, 20), (6000, 12), (40_000, 3)]

  @Test("a walk of a known heap finds our objects in spans of the expected classes")
  func walkFindsKnownSpans() throws {
    try exclusively {
      var held: [(p: UnsafeMutableRawPointer, size: Int)] = []
      defer { for h in held { GoAlloc.deallocate(h.p) } }
      for r in Self.requests {
        for _ in 0..<r.count { held.append((try #require(GoAlloc.allocate(r.size, scan: true)), r.size)) }
      }
      let map = HeapMap.current()
      let spans = map.spans
      #expect(!map.arenas.isEmpty)

      // Which span holds each object, and how many of ours each span holds.
      var ours: [UInt: Int] = [:]
      for h in held {
        let a = UInt(bitPattern: h.p)
        let s = try #require(spans.first { $0.base <= a && a < $0.end }, "no span holds \(h.p) (\(h.size) B)")
        ours[s.base, default: 0] += 1
        #expect(!map.freeRuns.contains { $0.base <= a && a < $0.end }, "\(h.p) lies in a free run")
        let cls = GoAlloc.sizeClass(for: h.size)
        if cls == 0 {
          #expect(s.isLarge && s.state == .large && s.bytes >= h.size && s.nelems == 1 && s.allocated == 1, "\(s)")
        } else {
          #expect(s.sizeClass == cls, "\(h.size) B in a span of class \(s.sizeClass), expected \(cls)")
          #expect(s.elemSize == GoAlloc.usableSize(h.p), "elemsize \(s.elemSize) for a \(h.size) B object")
          #expect((a - s.base) % UInt(s.elemSize) == 0, "\(h.p) is not at a slot boundary of \(s)")
          #expect(s.nelems == (s.bytes / s.elemSize), "\(s)")
          #expect(s.state != .large)
        }
      }
      for (base, n) in ours {
        let s = try #require(spans.first { $0.base == base })
        #expect(s.allocated >= n, "span at 0x\(String(base, radix: 16)) reports \(s.allocated) allocated, we hold \(n)")
        #expect(s.allocated <= s.nelems)
      }
      // Every class we asked for shows up with its slot size.
      for r in Self.requests where GoAlloc.sizeClass(for: r.size) != 0 {
        let cls = GoAlloc.sizeClass(for: r.size)
        #expect(spans.contains { $0.sizeClass == cls && $0.elemSize == SizeClassInfo.size(ofClass: cls) })
      }
    }
  }

  @Test("every page of every arena is in exactly one region, and the totals match MemStats")
  func regionsTileTheArenas() throws {
    try exclusively {
      let p = try #require(GoAlloc.allocate(3000))
      defer { GoAlloc.deallocate(p) }
      // Freed large blocks kept whole for reuse: 40 000 B in this thread's LargeBins, 1 MiB (past
      // the bins' sizes) in the heap's LargeCache. Their spans are in the map, as idle spans:
      // MemStats counts their pages in HeapIdle, not HeapInuse. (Other tests' threads' bins put
      // such spans in the heap at random: this test failed in CI's one-process TSan run.)
      for size in [40_000, 1 << 20] { GoAlloc.deallocate(try #require(GoAlloc.allocate(size))) }
      let map = HeapMap.current()
      var covered: UInt = 0
      for a in map.arenas {
        var at = max(a.base, covered)
        for r in a.regions {
          #expect(r.base == at, "gap or overlap at 0x\(String(at, radix: 16)) in arena 0x\(String(a.base, radix: 16)): next region at 0x\(String(r.base, radix: 16))")
          at = r.end
        }
        #expect(at >= a.end, "arena 0x\(String(a.base, radix: 16)) is covered only to 0x\(String(at, radix: 16))")
        covered = at
      }
      #expect(map.totals.mappedBytes == map.arenas.reduce(0) { $0 + $1.bytes })
      #expect(map.spans.allSatisfy { $0.state != .idle || ($0.isLarge && $0.allocated == 0) })

      // Page totals agree with MemStats (the scavenger may move pages between free and released
      // while we look, so allow a few tries).
      var agreed = false
      var last = ""
      for _ in 0..<20 where !agreed {
        let m = HeapMap.current().totals
        let s = MemStats.read()
        let idle = m.freeBytes + m.releasedBytes + m.idleSpanBytes
        agreed = UInt64(m.inUseBytes) == s.heapInuse && UInt64(idle) == s.heapIdle
          && UInt64(m.mappedBytes) == s.heapSys && UInt64(m.spans) == s.spansInUse
        last = "map: inuse \(m.inUseBytes) idle \(idle) (\(m.idleSpans) idle spans) sys \(m.mappedBytes) spans \(m.spans); "
          + "MemStats: inuse \(s.heapInuse) idle \(s.heapIdle) sys \(s.heapSys) spans \(s.spansInUse)"
        if !agreed { usleep(2000) }
      }
      #expect(agreed, "\(last)")
    }
  }

  @Test("the text format reads back to the same map")
  func textRoundTrip() throws {
    let map = _withExclusiveGlobalHeapForTesting { HeapMap.current() }
    let again = try HeapMap(parsing: map.text)
    #expect(again == map)
    #expect(map.text.hasPrefix(HeapMap.header + "\n"))
  }

  @Test("an idle span (a freed large span kept whole for reuse) is idle pages in the totals")
  func idleSpanTotals() throws {
    let text = """
      # goalloc heapmap v1
      arena 0xc000000000 67108864
      span 0xc000000000 5 1 40960 1 0 idle
      span 0xc00000a000 1 11 48 170 85 cached
      free 0xc00000c000 8186 1

      """
    let map = try HeapMap(parsing: text)
    #expect(map.spans.count == 2 && map.spans[0].state == .idle)
    let t = map.totals
    #expect(t.spans == 1 && t.idleSpans == 1 && t.largeSpans == 0)
    #expect(t.inUseBytes == 8192 && t.idleSpanBytes == 5 * 8192 && t.mappedBytes == 67_108_864)
    #expect(try HeapMap(parsing: map.text) == map)
  }

  @Test("malformed heap maps are rejected with the line number")
  func malformed() {
    #expect(throws: HeapMapParseError.self) { try HeapMap(parsing: "arena 0xc000000000 67108864\n") }  // no header
    do {
      _ = try HeapMap(parsing: "# goalloc heapmap v1\narena 0xc000000000 67108864\nspan 0xc000000000 1 11 48\n")
      Issue.record("a short span line was accepted")
    } catch {
      #expect(error.line == 3)
    }
    #expect(throws: HeapMapParseError.self) { try HeapMap(parsing: "# goalloc heapmap v1\nspan 0xc000000000 1 11 48 170 3 cached\n") }
    #expect(throws: HeapMapParseError.self) { try HeapMap(parsing: "# goalloc heapmap v1\narena 0xc000000000 67108864\nfree 0xc000000000 3 2\n") }
  }

  @Test("the SVG of the live heap is well-formed with one element per span")
  func svgOfLiveHeap() throws {
    let map = try exclusively { () throws -> HeapMap in
      var held: [UnsafeMutableRawPointer] = []
      defer { held.forEach(GoAlloc.deallocate) }
      for r in Self.requests { for _ in 0..<r.count { held.append(try #require(GoAlloc.allocate(r.size))) } }
      return HeapMap.current()
    }
    let svg = HeapMapSVG.render(map, title: "test <&> heap")
    let census = try #require(SVGCensus.take(svg), "the SVG is not well-formed XML")
    #expect(census.byClass["span"] == map.spans.count)
    #expect(census.spanPathsWithoutD == 0)
    #expect(census.byClass["arena"] == map.arenas.count)
    #expect(census.spanFills.allSatisfy { $0.hasPrefix("#") && $0.count == 7 })
    #expect(census.texts.contains { $0.contains("test <&> heap") }, "the title is escaped and kept")
  }

  /// A map written by hand: a half-full small span, a tiny-block span, two free pages, a 96 MiB
  /// large object that runs 4100 pages into the next arena (which a walk reports as one-page
  /// released runs: they must be dropped), then the released rest of that arena.
  static func handMadeMap() -> String {
    var t = """
      # goalloc heapmap v1
      arena 0xc000000000 67108864
      span 0xc000000000 1 11 48 170 85 cached
      span 0xc000002000 1 136 16 512 10 partial
      free 0xc000004000 2 0
      span 0xc000008000 12288 1 100663296 1 1 large
      arena 0xc004000000 67108864

      """
    for i in 0..<4100 { t += "free 0x\(String(0xc004000000 + i * 8192, radix: 16)) 1 1\n" }
    t += "free 0xc006008000 4092 1\n"
    return t
  }

  @Test("a hand-made map: totals, the arena-crossing span, bands and colours")
  func handMade() throws {
    let map = try HeapMap(parsing: Self.handMadeMap())
    #expect(map.spans.count == 3)
    #expect(map.freeRuns == [HeapMap.FreeRun(base: 0xc000004000, npages: 2, released: false),
                             HeapMap.FreeRun(base: 0xc006008000, npages: 4092, released: true)])
    let t = map.totals
    #expect(t.inUseBytes == (1 + 1 + 12288) * 8192)
    #expect(t.freeBytes == 2 * 8192)
    #expect(t.releasedBytes == 4092 * 8192)
    #expect(t.mappedBytes == 2 * 67_108_864)
    #expect(t.spans == 3 && t.largeSpans == 1)
    #expect(t.allocatedBytes == 85 * 48 + 10 * 16 + 100_663_296)

    let svg = HeapMapSVG.render(map, title: "hand-made")
    let census = try #require(SVGCensus.take(svg), "the SVG is not well-formed XML")
    #expect(census.byClass["span"] == 3)
    #expect(census.byClass["free"] == 1)
    #expect(census.byClass["released"] == 1)
    #expect(census.byClass["arena"] == 2)
    // Whole rows of the large object and of the released tail fold into labelled bands.
    #expect(census.texts.contains { $0.contains("large object") })
    #expect(census.texts.contains { $0.contains("released to the OS") && $0.contains("MiB") })
    // The title line has the totals.
    #expect(census.texts.contains { $0.contains("in use 96.0 MiB") && $0.contains("3 spans") && $0.contains("released 32.0 MiB") },
            "\(census.texts.prefix(3))")
    // Colours: large objects and tiny blocks have their own; a half-full span is paler than full.
    let large = HeapMapSVG.baseColour(spanClass: 0, elemSize: 0).hex
    #expect(census.spanFills.contains(large))
    let full = HeapMapSVG.fill(spanClass: 11, elemSize: 48, fullness: 1)
    let half = HeapMapSVG.fill(spanClass: 11, elemSize: 48, fullness: 0.5)
    #expect(half.luminance > full.luminance)
    #expect(census.spanFills.contains(half.hex))
    #expect(HeapMapSVG.baseColour(spanClass: 136, elemSize: 16) != HeapMapSVG.baseColour(spanClass: 11, elemSize: 16))
    // Small slots are bluer, big slots redder.
    let small = HeapMapSVG.baseColour(spanClass: 2, elemSize: 8), big = HeapMapSVG.baseColour(spanClass: 134, elemSize: 32768)
    #expect(small.b > small.r && big.r > big.b)
  }

  @Test("without compression every row is drawn; with it the SVG is much shorter")
  func compression() throws {
    let map = try HeapMap(parsing: Self.handMadeMap())
    var o = HeapMapSVG.Options()
    o.compressRows = 1_000_000
    let plain = HeapMapSVG(options: o).render(map)
    let folded = HeapMapSVG.render(map)
    func height(_ svg: String) -> Double {
      guard let r = svg.range(of: "height=\""), let e = svg[r.upperBound...].firstIndex(of: "\"") else { return 0 }
      return Double(svg[r.upperBound..<e]) ?? 0
    }
    #expect(height(plain) > height(folded) + 500, "plain \(height(plain)), folded \(height(folded))")
    #expect(SVGCensus.take(plain)?.byClass["span"] == 3)
  }
}
