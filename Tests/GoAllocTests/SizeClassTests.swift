// Size classes: the generated table must match Go's published table (Fixtures/go-sizeclasses.csv),
// the committed C header must match the generator's output, and the C lookup and divide-magic
// helpers the allocator uses must be exact for every request size and every span offset.

import CGoAllocShim
import Foundation
import SizeClassGenerator
import Testing

@Suite("Size classes")
struct SizeClassTests {
  let table = SizeClassTable.go

  static func fixtureText() throws -> String {
    let url = try #require(
      Bundle.module.url(forResource: "go-sizeclasses", withExtension: "csv", subdirectory: "Fixtures"))
    return try String(contentsOf: url, encoding: .utf8)
  }

  /// The repository root, found from this file's path (Tests/GoAllocTests/SizeClassTests.swift).
  static let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  @Test("generated rows equal Go's table row for row")
  func rowsMatchFixture() throws {
    let lines = try Self.fixtureText().split(separator: "\n").map(String.init)
    #expect(lines.first == "class,bytes_per_obj,bytes_per_span,objects,tail_waste,max_waste_percent")
    let rows = lines.dropFirst()
    #expect(rows.count == SizeClassTable.numSizeClasses - 1)
    #expect(table.classes.count == SizeClassTable.numSizeClasses)
    #expect(table.classes[0].size == 0 && table.classes[0].divMagic == 0)
    for (row, c) in zip(rows, table.classes.dropFirst()) {
      let f = row.split(separator: ",").map(String.init)
      try #require(f.count == 6, "bad fixture row: \(row)")
      #expect(Int(f[0]) == c.classIndex, "\(row)")
      #expect(Int(f[1]) == c.size, "\(row)")
      #expect(Int(f[2]) == c.bytesPerSpan, "\(row)")
      #expect(Int(f[3]) == c.objects, "\(row)")
      #expect(Int(f[4]) == c.tailWaste, "\(row)")
      #expect(f[5] == c.maxWastePercentText, "\(row)")
      #expect(abs(Double(f[5])! - c.maxWastePercent) <= 0.005, "\(row)")
    }
  }

  @Test("CSV rendering equals the fixture file")
  func csvMatchesFixture() throws {
    #expect(table.renderCSV() == (try Self.fixtureText()))
  }

  @Test("the text table has a header and one line per class")
  func textTable() {
    let lines = table.renderText().split(separator: "\n")
    #expect(lines.count == SizeClassTable.numSizeClasses)
    #expect(lines[0] == "class  bytes/obj  bytes/span  objects  tail waste  max waste")
    #expect(lines[1] == "    1          8        8192     1024           0     87.50%")
    #expect(lines[67] == "   67      32768       32768        1           0     12.50%")
  }

  @Test("the committed C header is exactly the generator's output (Scripts/gen-sizeclasses.sh)")
  func headerIsCurrent() throws {
    let url = Self.repositoryRoot.appendingPathComponent(SizeClassTable.headerPath)
    let committed = try String(contentsOf: url, encoding: .utf8)
    #expect(committed == table.renderCHeader(), "run Scripts/gen-sizeclasses.sh to regenerate \(url.path)")
  }

  @Test("the generator's own invariant checks pass")
  func invariants() {
    #expect(table.validate() == [])
  }

  @Test("Go's cross-check vectors")
  func crossCheckVectors() {
    #expect(table.sizeToClass8.prefix(20) == [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12])
    #expect(table.sizeToClass8.count == 129 && table.sizeToClass8[128] == 32)
    #expect(table.sizeToClass128.prefix(20) == [32, 33, 34, 35, 36, 37, 37, 38, 38, 39, 39, 40, 40, 40, 41, 41, 41, 42, 43, 43])
    #expect(table.sizeToClass128.count == 249 && table.sizeToClass128.last == 67)
    #expect(table.classes[1...5].map(\.divMagic) == [536870912, 268435456, 178956971, 134217728, 89478486])
    #expect(table.classes[34...40].map(\.npages) == [1, 2, 1, 2, 1, 2, 1])
    #expect(table.classes[65].npages == 10 && table.classes[65].size == 27264)
  }

  @Test("C constants and tables agree with the generator")
  func cTablesMatch() {
    #expect(GOALLOC_NUM_SIZE_CLASSES == 68)
    #expect(GOALLOC_MAX_SMALL_SIZE == 32768)
    #expect(GOALLOC_PAGE_SHIFT == 13)
    for c in table.classes {
      let i = UInt32(c.classIndex)
      #expect(goalloc_class_size(i) == UInt32(c.size))
      #expect(goalloc_class_npages(i) == UInt32(c.npages))
      #expect(goalloc_class_nobjs(i) == UInt32(c.objects))
      #expect(goalloc_class_divmagic(i) == c.divMagic)
    }
  }

  @Test("goalloc_size_class picks the smallest fitting class", arguments: [0, 1])
  func sizeClassLookup(mallocMode: Int32) {
    let n = UInt32(GOALLOC_NUM_SIZE_CLASSES)
    var wrong: [Int] = []
    var expected: UInt32 = 1  // smallest class (with 16-alignment in malloc mode) covering `size`
    for size in 1...Int(GOALLOC_MAX_SMALL_SIZE) {
      while expected < n && (goalloc_class_size(expected) < UInt32(size)
        || (mallocMode != 0 && size >= 16 && goalloc_class_size(expected) % 16 != 0)) {
        expected += 1
      }
      let c = goalloc_size_class(size, mallocMode)
      if c != expected || (mallocMode != 0 && size >= 16 && goalloc_class_size(c) % 16 != 0)
        || table.sizeClass(for: size, mallocMode: mallocMode != 0) != Int(c) {
        wrong.append(size)
      }
    }
    #expect(wrong.isEmpty, "wrong class for sizes \(wrong.prefix(20))")
  }

  @Test("18 bytes: the 24-byte class in Go mode, the 32-byte class in malloc mode")
  func mallocModeRounding() {
    #expect(goalloc_size_class(18, 0) == 3)
    #expect(goalloc_class_size(3) == 24)
    #expect(goalloc_class_size(goalloc_size_class(18, 1)) == 32)
    for size in 17...24 { #expect(goalloc_size_class(size, 1) == 4) }
    #expect(goalloc_size_class(16, 1) == 2 && goalloc_size_class(8, 1) == 1)
    #expect(goalloc_size_class(25, 1) == goalloc_size_class(25, 0))
  }

  @Test("divide magic: object starts map to their index, every offset to offset / size")
  func divMagic() {
    var wrong: [String] = []
    for c in 1..<UInt32(GOALLOC_NUM_SIZE_CLASSES) {
      let size = UInt64(goalloc_class_size(c))
      let magic = UInt64(goalloc_class_divmagic(c))
      let objects = UInt64(goalloc_class_nobjs(c))
      let spanBytes = UInt64(goalloc_class_npages(c)) << UInt64(GOALLOC_PAGE_SHIFT)
      for n in 0..<objects where (n * size * magic) >> 32 != n {
        wrong.append("class \(c) object \(n)")
      }
      var off: UInt64 = 0
      while off < spanBytes {
        if (off * magic) >> 32 != off / size { wrong.append("class \(c) offset \(off)") }
        off += 1
      }
    }
    #expect(wrong.isEmpty, "\(wrong.prefix(20))")
  }
}
