// GoAlloc.explain (`goalloc explain`): its figures against Go's published size-class table
// (Fixtures/go-sizeclasses.csv) at every class boundary, Go's own 17-byte example, the tiny
// allocator, large objects, and the C struct layouts of --struct.

import GoAlloc
import GoAllocCore
import Testing

@Suite("explain")
struct ExplainTests {
  struct Row { var cls, size, spanBytes, objects, tail: Int; var maxWaste: String }

  static func fixtureRows() throws -> [Row] {
    try SizeClassTests.fixtureText().split(separator: "\n").dropFirst().map { line in
      let f = line.split(separator: ",").map(String.init)
      try #require(f.count == 6)
      return Row(cls: Int(f[0])!, size: Int(f[1])!, spanBytes: Int(f[2])!, objects: Int(f[3])!, tail: Int(f[4])!,
                 maxWaste: f[5])
    }
  }

  @Test("every class boundary: the class's own size, one byte above the class below, one byte above it")
  func classBoundaries() throws {
    let rows = try Self.fixtureRows()
    #expect(rows.count == 67)
    var previous = 0
    for r in rows {
      // Exactly the class's size: no waste in the objects, only the span's tail.
      let top = try #require(GoAlloc.explain(size: r.size))
      #expect(top.sizeClass == r.cls && top.objectSize == r.size, "\(r)")
      #expect(top.spanBytes == r.spanBytes && top.objectsPerSpan == r.objects, "\(r)")
      #expect(top.wastePerObject == 0 && top.tailWaste == r.tail && top.wastePerSpan == r.tail, "\(r)")
      #expect(top.scanSpanClass == 2 * r.cls && top.noscanSpanClass == 2 * r.cls + 1, "\(r)")
      #expect(!top.isLarge)
      // One byte above the class below: the class's worst case, Go's "max waste" column.
      let low = try #require(GoAlloc.explain(size: previous + 1))
      #expect(low.sizeClass == r.cls && low.objectSize == r.size && low.spanBytes == r.spanBytes, "\(r)")
      #expect(low.wastePerObject == r.size - previous - 1, "\(r)")
      #expect(low.wastePerSpan == (r.size - previous - 1) * r.objects + r.tail, "\(r)")
      #expect(low.wastePerSpanPercentText == r.maxWaste, "\(r)")
      #expect(abs(low.wastePerSpanPercent - Double(r.maxWaste)!) <= 0.005, "\(r)")
      // One byte above the class: the next class (or a large object above 32 KiB).
      let next = try #require(GoAlloc.explain(size: r.size + 1))
      #expect(next.sizeClass == (r.cls == 67 ? 0 : r.cls + 1), "\(r)")
      previous = r.size
    }
  }

  @Test("what is explained is what the allocator hands out: the slot of one byte above each class below")
  func explainedIsAllocated() throws {
    let rows = try Self.fixtureRows()
    _withExclusiveGlobalHeapForTesting {  // (it allocates: other tests compare global counters)
      var previous = 0
      for r in rows {
        let e = GoAlloc.explain(size: previous + 1)
        let p = GoAlloc.allocate(previous + 1, scan: true)
        #expect(p.map { GoAlloc.usableSize($0) } == e?.objectSize, "\(r)")
        GoAlloc.deallocate(p)
        previous = r.size
      }
    }
  }

  @Test("Go's example: a 17-byte object gets class 3 (24 B); 2395 B of a span are lost (29.24%)")
  func seventeen() throws {
    let e = try #require(GoAlloc.explain(size: 17))
    #expect(e.sizeClass == 3 && e.objectSize == 24 && e.spanBytes == 8192 && e.spanPages == 1)
    #expect(e.objectsPerSpan == 341 && e.wastePerObject == 7 && e.tailWaste == 8)
    #expect(e.wastePerSpan == 2395 && e.wastePerSpanPercentText == "29.24")
    #expect(e.scanSpanClass == 6 && e.noscanSpanClass == 7 && e.tinyPerBlock == nil)
    // The C API aligns to 16: class 4 (32 B).
    #expect(e.mallocSizeClass == 4 && e.mallocObjectSize == 32)
    #expect(GoAlloc.explain(size: 17) == GoAlloc.explain(size: 17))
  }

  @Test("the tiny allocator: noscan requests under 16 B, packed at their alignment")
  func tiny() throws {
    let expected = [1: 16, 2: 8, 3: 5, 4: 4, 5: 3, 6: 2, 7: 2, 8: 2, 9: 1, 12: 1, 15: 1]
    for (n, per) in expected {
      let e = try #require(GoAlloc.explain(size: n))
      #expect(e.tinyPerBlock == per, "\(n)")
      #expect(e.tinyWastePerBlock == 16 - per * n, "\(n)")
    }
    #expect(GoAlloc.explain(size: 16)?.tinyPerBlock == nil)
    #expect(SizeExplanation.tinySpanClass == 136)
  }

  @Test("large objects: whole pages of their own, span classes 0 and 1")
  func large() throws {
    let e = try #require(GoAlloc.explain(size: 100_000))
    #expect(e.isLarge && e.sizeClass == 0 && e.spanPages == 13 && e.objectSize == 13 * 8192)
    #expect(e.objectsPerSpan == 1 && e.wastePerObject == 6496 && e.wastePerSpan == 6496 && e.tailWaste == 0)
    #expect(e.scanSpanClass == 0 && e.noscanSpanClass == 1 && e.mallocSizeClass == 0)
    let first = try #require(GoAlloc.explain(size: 32769))
    #expect(first.spanPages == 5 && first.wastePerObject == 8191)
    #expect(GoAlloc.explain(size: SizeExplanation.maxSize)?.spanPages == SizeExplanation.maxSize / 8192)
  }

  @Test("sizes out of range: nil")
  func outOfRange() {
    #expect(GoAlloc.explain(size: 0) == nil)
    #expect(GoAlloc.explain(size: -1) == nil)
    #expect(GoAlloc.explain(size: SizeExplanation.maxSize + 1) == nil)
    #expect(GoAlloc.explain(size: Int.max) == nil)
  }

  @Test("GoAlloc's own spans: Go's span, or whole multiples of it")
  func goallocSpans() throws {
    for r in try Self.fixtureRows() {
      let e = try #require(GoAlloc.explain(size: r.size))
      #expect(e.goallocSpanPages % e.spanPages == 0, "\(r)")
      #expect(e.goallocObjectsPerSpan == e.goallocSpanPages * 8192 / e.objectSize, "\(r)")
    }
    #expect(GoAlloc.explain(size: 32768)?.goallocSpanPages == 8)
  }

  @Test("C struct layouts: fields at their alignment, size rounded to the struct's alignment")
  func structLayouts() throws {
    let l = try CStructLayout(parsing: "int64,int64,uint8")
    #expect(l.fields.map(\.offset) == [0, 8, 16] && l.size == 24 && l.alignment == 8)
    #expect(l.fieldBytes == 17 && l.paddingBytes == 7 && !l.holdsPointers)
    #expect(GoAlloc.explain(size: l.size)?.sizeClass == 3)

    let m = try CStructLayout(parsing: "struct { char; char *; uint16[3]; }")
    #expect(m.fields.map(\.type) == ["char", "char*", "uint16[3]"])
    #expect(m.fields.map(\.offset) == [0, 8, 16] && m.size == 24 && m.holdsPointers)

    let c = try CStructLayout(parsing: "char, short, char, int, char")
    #expect(c.fields.map(\.offset) == [0, 2, 4, 8, 12] && c.size == 16 && c.alignment == 4)
    let d = try CStructLayout(parsing: "uint8[3]")
    #expect(d.size == 3 && d.alignment == 1)
    let e = try CStructLayout(parsing: "char, long double")
    #expect(e.fields[1].offset == 16 && e.size == 32 && e.alignment == 16)
    let f = try CStructLayout(parsing: "unsigned  long long, void *")
    #expect(f.fields.map(\.type) == ["unsigned long long", "void*"] && f.size == 16)

    for bad in ["", ",", "foo", "int64,,int8", "uint8[0]", "uint8[x]", "int64]", "struct {}"] {
      #expect(throws: CStructLayout.ParseError.self, "\(bad)") { try CStructLayout(parsing: bad) }
    }
  }
}
