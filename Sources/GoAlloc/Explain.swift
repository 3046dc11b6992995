// Explain: what the allocator does with a request of n bytes (`goalloc explain`, issue 21):
// its size class, the class's object and span, the bytes lost per object and per span, the tiny
// allocator where it applies, the span class numbers, and for a large request its pages. And
// the C layout of a struct (`--struct "int64,int64,uint8"`), whose sizeof is then explained.
//
// Every figure comes from the allocator's own table (GoAllocCore's SizeClassInfo, the generated
// goalloc_sizeclasses.h), so what is explained is what is allocated. Go's figures come first
// (the Swift API allocates with Go's classes as they are); the C API's (malloc mode: 16-byte
// alignment from 16 B up) and GoAlloc's larger spans are given beside them where they differ.
import GoAllocCore

/// What GoAlloc does with a request of `size` bytes (`GoAlloc.explain(size:)`).
public struct SizeExplanation: Equatable, Sendable {
  /// The request, in bytes (1 ... `SizeExplanation.maxSize`).
  public let size: Int
  /// The size class (1...67), or 0 for a large object (more than 32 KiB: a span of its own).
  public let sizeClass: Int
  /// Bytes of the slot the request gets: the class's size, or the large object's whole pages.
  public let objectSize: Int
  /// Pages of the class's span in Go's table (a large object: its own pages).
  public let spanPages: Int
  /// Objects in one such span (1 for a large object).
  public let objectsPerSpan: Int
  /// Noscan requests under 16 B from the Swift API share 16 B blocks (Go's tiny allocator):
  /// objects of this size per block when they come back to back. nil when it does not apply.
  public let tinyPerBlock: Int?
  /// The class the C API gives the same request (malloc, and goalloc_gc_*: 16-byte aligned from
  /// 16 B up, no tiny allocator), 0 for large; and that class's object size.
  public let mallocSizeClass: Int
  public let mallocObjectSize: Int
  /// Pages and objects of GoAlloc's spans of this class once a class has its first spans
  /// (`SizeClassInfo.pagesPerSpan`: Go's span or a multiple of it, for classes whose Go span
  /// holds few objects). A large object: its pages, one object.
  public let goallocSpanPages: Int
  public let goallocObjectsPerSpan: Int

  /// The largest request the allocator serves (larger ones fail with ENOMEM).
  public static let maxSize = maxAllocSize
  public static let pageSize = GoAllocCore.pageSize
  public static let maxSmallSize = GoAllocCore.maxSmallSize
  public static let tinyBlockSize = GoAllocCore.tinySize

  /// nil when `size` is below 1 or above `maxSize`.
  public init?(size: Int) {
    guard size >= 1 && size <= SizeExplanation.maxSize else { return nil }
    self.size = size
    if size > SizeExplanation.maxSmallSize {
      let pages = (size + SizeExplanation.pageSize - 1) / SizeExplanation.pageSize
      sizeClass = 0
      objectSize = pages * SizeExplanation.pageSize
      spanPages = pages
      objectsPerSpan = 1
      tinyPerBlock = nil
      mallocSizeClass = 0
      mallocObjectSize = objectSize
      goallocSpanPages = pages
      goallocObjectsPerSpan = 1
      return
    }
    let c = SizeClassInfo.sizeClass(for: size)
    sizeClass = c
    objectSize = SizeClassInfo.size(ofClass: c)
    spanPages = SizeClassInfo.pages(ofClass: c)
    objectsPerSpan = SizeClassInfo.objects(ofClass: c)
    tinyPerBlock = size < SizeExplanation.tinyBlockSize ? SizeExplanation.tinyPacking(size) : nil
    mallocSizeClass = SizeClassInfo.sizeClass(for: size, mallocMode: true)
    mallocObjectSize = SizeClassInfo.size(ofClass: mallocSizeClass)
    goallocSpanPages = SizeClassInfo.pagesPerSpan(ofClass: c)
    goallocObjectsPerSpan = SizeClassInfo.objectsPerSpan(ofClass: c)
  }

  /// Objects of n bytes (n < 16) that one tiny block takes back to back: the tiny allocator
  /// aligns each to 8, 4 or 2 bytes when n is a multiple of it (MCache.mallocTiny).
  static func tinyPacking(_ n: Int) -> Int {
    let align = n % 8 == 0 ? 8 : n % 4 == 0 ? 4 : n % 2 == 0 ? 2 : 1
    let stride = (n + align - 1) / align * align
    return 1 + (SizeExplanation.tinyBlockSize - n) / stride
  }

  /// A large object (more than 32 KiB): one span of `spanPages` pages of its own.
  public var isLarge: Bool { sizeClass == 0 }
  /// Bytes of the class's span in Go's table.
  public var spanBytes: Int { spanPages * SizeExplanation.pageSize }
  /// Bytes of the slot that the request leaves unused.
  public var wastePerObject: Int { objectSize - size }
  /// Bytes at the end of the span that no object can use.
  public var tailWaste: Int { spanBytes - objectsPerSpan * objectSize }
  /// Bytes of a span filled with requests of this size that hold none of them: every object's
  /// waste and the tail (for the size just above the class below, Go's "max waste").
  public var wastePerSpan: Int { objectsPerSpan * wastePerObject + tailWaste }
  /// `wastePerSpan` as a share of the span, in percent.
  public var wastePerSpanPercent: Double { Double(wastePerSpan) * 100 / Double(spanBytes) }
  /// `wastePerSpanPercent` with two decimals, rounded half up in integers (as Go's table prints).
  public var wastePerSpanPercentText: String { SizeExplanation.percentText(wastePerSpan, of: spanBytes) }
  /// Go's span class numbers (`sizeclass << 1 | noscan`): objects that may hold pointers, and
  /// objects that do not. A large object's are 0 and 1.
  public var scanSpanClass: Int { sizeClass << 1 }
  public var noscanSpanClass: Int { sizeClass << 1 | 1 }
  /// The span class of the tiny allocator's blocks in GoAlloc (an extra class: 16 B slots,
  /// noscan; Go keeps them in class 2's noscan spans, span class 5).
  public static let tinySpanClass = SpanClass.tiny.index
  /// Bytes of a tiny block left over when it holds `tinyPerBlock` objects of this size.
  public var tinyWastePerBlock: Int? { tinyPerBlock.map { SizeExplanation.tinyBlockSize - $0 * size } }

  /// `part / whole` in percent with two decimals, rounded half up (integers only).
  static func percentText(_ part: Int, of whole: Int) -> String {
    let scaled = part * 10_000
    var hundredths = scaled / whole
    if 2 * (scaled % whole) >= whole { hundredths += 1 }
    let fraction = hundredths % 100
    return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
  }
}

extension GoAlloc {
  /// What the allocator does with a request of `size` bytes (nil below 1 or above
  /// `SizeExplanation.maxSize`): the figures `goalloc explain` prints.
  public static func explain(size: Int) -> SizeExplanation? { SizeExplanation(size: size) }
}

/// The layout of a C struct on this platform (LP64: x86-64 and AArch64 Linux): each field at
/// the next multiple of its alignment, the size rounded up to the largest alignment, as a C
/// compiler lays it out (no packing, no bit-fields). `goalloc explain --struct` explains its
/// size.
public struct CStructLayout: Equatable, Sendable {
  public struct Field: Equatable, Sendable {
    /// The type as written (normalized spaces), with its array length if any: "uint8[3]".
    public let type: String
    public let offset: Int
    public let size: Int
    public let alignment: Int
    public let isPointer: Bool
  }

  public struct ParseError: Error, Equatable, CustomStringConvertible {
    public let description: String
  }

  public let fields: [Field]
  /// sizeof: the end of the last field rounded up to `alignment`.
  public let size: Int
  /// The struct's alignment: its largest field alignment.
  public let alignment: Int

  /// Bytes of the fields themselves.
  public var fieldBytes: Int { fields.reduce(0) { $0 + $1.size } }
  /// Bytes of padding between the fields and at the end.
  public var paddingBytes: Int { size - fieldBytes }
  /// Whether a field is a pointer (the struct must be allocated scan in the GC mode, and never
  /// goes to the tiny allocator).
  public var holdsPointers: Bool { fields.contains { $0.isPointer } }

  /// Scalar types: size (= alignment) and whether it is a pointer. C's names and Go-like ones.
  static let scalars: [(names: [String], size: Int)] = [
    (["int8", "uint8", "int8_t", "uint8_t", "char", "signed char", "unsigned char", "bool", "_Bool", "byte"], 1),
    (["int16", "uint16", "int16_t", "uint16_t", "short", "unsigned short", "short int", "unsigned short int"], 2),
    (["int32", "uint32", "int32_t", "uint32_t", "int", "unsigned", "unsigned int", "signed", "signed int",
      "float", "float32", "rune"], 4),
    (["int64", "uint64", "int64_t", "uint64_t", "long", "unsigned long", "long int", "unsigned long int",
      "long long", "unsigned long long", "long long int", "unsigned long long int",
      "size_t", "ssize_t", "ptrdiff_t", "intptr_t", "uintptr_t", "uintptr", "off_t", "time_t",
      "double", "float64"], 8),
    (["long double", "__int128", "unsigned __int128", "int128", "uint128", "__float128", "float128"], 16),
  ]
  static let pointerNames = ["ptr", "pointer", "unsafe.pointer"]

  /// The names `parse` knows, for error messages.
  public static let typeNamesHelp =
    "int8..int64, uint8..uint64, char, short, int, long, long long (and unsigned), size_t, float, double, long double, bool, ptr or any T*, and arrays T[N]"

  /// Parses a comma- (or semicolon-) separated list of field types, e.g. "int64,int64,uint8",
  /// "char*, uint32[3], double"; an optional "struct { ... }" around it is accepted.
  public init(parsing spec: String) throws {
    var body = spec.trimmingSpaces
    if body.hasPrefix("struct") { body = String(body.dropFirst("struct".count)).trimmingSpaces }
    if body.hasPrefix("{") && body.hasSuffix("}") { body = String(body.dropFirst().dropLast()) }
    var parts = body.split(omittingEmptySubsequences: false) { $0 == "," || $0 == ";" }.map { String($0).trimmingSpaces }
    if parts.last == "" && parts.count > 1 { parts.removeLast() }  // "int; char;" ends with a separator
    if parts.isEmpty || parts == [""] { throw ParseError(description: "empty struct: give its field types, e.g. \"int64,int64,uint8\"") }
    var fields: [Field] = []
    var offset = 0, alignment = 1
    for part in parts {
      guard !part.isEmpty else { throw ParseError(description: "empty field in \"\(spec)\"") }
      let (elementSize, elementAlign, isPointer, count, written) = try CStructLayout.parseField(part)
      let size = elementSize * count
      offset = (offset + elementAlign - 1) / elementAlign * elementAlign
      fields.append(Field(type: written, offset: offset, size: size, alignment: elementAlign, isPointer: isPointer))
      offset += size
      alignment = max(alignment, elementAlign)
      guard offset <= SizeExplanation.maxSize else {
        throw ParseError(description: "struct larger than the largest allocation (\(SizeExplanation.maxSize) bytes)")
      }
    }
    self.fields = fields
    self.alignment = alignment
    self.size = (offset + alignment - 1) / alignment * alignment
  }

  /// One field: "T", "T*", "T[N]" (N >= 1). Returns its element size, alignment, pointer-ness,
  /// element count and its normalized text.
  static func parseField(_ text: String) throws -> (Int, Int, Bool, Int, String) {
    var t = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    var count = 1
    var suffix = ""
    if t.hasSuffix("]") {
      guard let open = t.lastIndex(of: "[") else { throw ParseError(description: "bad array field \"\(text)\"") }
      let n = String(t[t.index(after: open)..<t.index(before: t.endIndex)]).trimmingSpaces
      guard let v = Int(n), v >= 1, v <= SizeExplanation.maxSize else {
        throw ParseError(description: "bad array length in \"\(text)\": give a whole number of at least 1, e.g. uint8[3]")
      }
      count = v
      suffix = "[\(v)]"
      t = String(t[..<open]).trimmingSpaces
    }
    let base = t.replacingSpacesAroundStars
    if base.hasSuffix("*") || pointerNames.contains(base.lowercased()) { return (8, 8, true, count, base + suffix) }
    for (names, size) in scalars where names.contains(base) { return (size, size, false, count, base + suffix) }
    throw ParseError(description: "unknown field type \"\(text)\" (known: \(typeNamesHelp))")
  }
}

extension String {
  fileprivate var trimmingSpaces: String {
    var s = Substring(self)
    while let f = s.first, f == " " || f == "\t" || f == "\n" { s.removeFirst() }
    while let l = s.last, l == " " || l == "\t" || l == "\n" { s.removeLast() }
    return String(s)
  }
  /// "char *" and "char*" alike: no space before a star.
  fileprivate var replacingSpacesAroundStars: String {
    var out = ""
    for ch in self {
      if ch == "*" { while out.hasSuffix(" ") { out.removeLast() } }
      out.append(ch)
    }
    return out
  }
}
