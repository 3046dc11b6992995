// `goalloc explain SIZE... [--struct TYPES]... [--json]`: what the allocator does with requests
// of these sizes (GoAlloc.explain: size class, object and span, waste per object and per span,
// tiny allocator, span classes, pages of a large object), as a table or as JSON.

import ArgumentParser
import GoAlloc

struct ExplainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "explain",
    abstract: "Explain how requests of the given sizes are allocated.",
    discussion: """
      For each SIZE (bytes; a K, M or G suffix, or KiB, MiB, GiB, multiplies by 1024s): its size \
      class and the class's object size, span size and objects per span; the bytes wasted per \
      object and per span (a span full of such requests: every object's waste and the span's \
      tail); the tiny allocator where it applies (noscan requests under 16 B from the Swift \
      API); the scan and noscan span class numbers; for a request above 32 KiB, its pages. \
      The figures are Go's table (the Swift API's classes); notes below the table give what the \
      C API (malloc, 16-byte aligned) and GoAlloc's larger spans do where they differ. \
      --struct "int64,int64,uint8" lays a C struct out first (each field at its alignment, the \
      size rounded up to the struct's alignment) and explains its sizeof.
      """
  )

  @Argument(help: "Request sizes in bytes (1 to 32 TiB), e.g. 17 4096 64KiB.")
  var sizes: [String] = []

  @Option(name: .customLong("struct"),
          help: ArgumentHelp("A C struct's field types, comma-separated, e.g. \"int64,int64,uint8\" (repeatable).",
                             valueName: "TYPES"))
  var structs: [String] = []

  @Flag(help: "Print JSON (an array with one object per size or struct) instead of a table.")
  var json = false

  /// One thing explained: a size, or a struct and its sizeof.
  struct Item {
    var label: String
    var layout: CStructLayout?
    var explanation: SizeExplanation
  }

  func validate() throws {
    if sizes.isEmpty && structs.isEmpty {
      throw ValidationError("give at least one size or --struct, e.g. goalloc explain 17")
    }
    _ = try items()
  }

  func items() throws -> [Item] {
    var out: [Item] = []
    for text in sizes {
      let n = try Self.parseSize(text)
      guard let e = GoAlloc.explain(size: n) else { throw ValidationError("\(text): out of range") }
      out.append(Item(label: text, layout: nil, explanation: e))
    }
    for spec in structs {
      let layout: CStructLayout
      do { layout = try CStructLayout(parsing: spec) } catch let e as CStructLayout.ParseError {
        throw ValidationError("--struct \"\(spec)\": \(e.description)")
      }
      guard let e = GoAlloc.explain(size: max(layout.size, 1)) else {
        throw ValidationError("--struct \"\(spec)\": \(layout.size) bytes is out of range")
      }
      out.append(Item(label: "struct{\(layout.fields.map(\.type).joined(separator: ", "))}", layout: layout, explanation: e))
    }
    return out
  }

  /// "17", "4096", "64K", "64KiB", "1M", "2GiB": bytes, 1 ... SizeExplanation.maxSize.
  static func parseSize(_ text: String) throws -> Int {
    let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                  ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40),
                                  ("k", 1 << 10), ("B", 1)]
    var digits = Substring(text)
    var unit = 1
    for (suffix, value) in units where digits.hasSuffix(suffix) {
      digits = digits.dropLast(suffix.count)
      unit = value
      break
    }
    let limit = SizeExplanation.maxSize
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
      throw ValidationError("\(text): not a size; give bytes as a whole number, optionally with K, M, G or KiB, MiB, GiB (e.g. 17, 4096, 64KiB)")
    }
    guard let v = Int(digits), v <= limit / unit else {
      throw ValidationError("\(text): larger than the largest allocation GoAlloc serves (\(limit) bytes, 32 TiB); malloc fails with ENOMEM")
    }
    if v == 0 {
      throw ValidationError("\(text): a size must be at least 1 byte (malloc(0) is served as a 1-byte request)")
    }
    return v * unit
  }

  func run() throws {
    let items = try items()
    print(json ? Self.renderJSON(items) : Self.renderTable(items), terminator: "")
  }

  // MARK: table

  static func renderTable(_ items: [Item]) -> String {
    var out = ""
    for item in items {
      guard let l = item.layout else { continue }
      out += "\(item.label): \(l.size) B, alignment \(l.alignment); \(l.fieldBytes) B of fields, \(l.paddingBytes) B of padding\(l.holdsPointers ? "; holds pointers" : "")\n"
      out += "  offset  size  align  field\n"
      var end = 0
      for f in l.fields {
        if f.offset > end { out += "  \(pad(end, 6))  \(pad(f.offset - end, 4))         (padding)\n" }
        out += "  \(pad(f.offset, 6))  \(pad(f.size, 4))  \(pad(f.alignment, 5))  \(f.type)\n"
        end = f.offset + f.size
      }
      if l.size > end { out += "  \(pad(end, 6))  \(pad(l.size - end, 4))         (padding to the alignment)\n" }
      out += "\n"
    }
    let header = ["size", "class", "object", "span", "pages", "objects", "waste/object", "waste/span", "waste %",
                  "span class scan/noscan", "tiny (per 16 B block)"]
    var rows: [[String]] = []
    for item in items {
      let e = item.explanation
      rows.append([item.layout == nil ? "\(e.size)" : "\(e.size) (\(item.label))",
                   e.isLarge ? "large" : "\(e.sizeClass)", "\(e.objectSize)", "\(e.spanBytes)", "\(e.spanPages)",
                   "\(e.objectsPerSpan)", "\(e.wastePerObject)", "\(e.wastePerSpan)", e.wastePerSpanPercentText + "%",
                   "\(e.scanSpanClass)/\(e.noscanSpanClass)",
                   e.tinyPerBlock.map { "\($0)" } ?? "-"])
    }
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
      var s = ""
      for (i, c) in cells.enumerated() {
        // The first column (sizes, struct names) to the left, numbers to the right.
        s += i == 0 ? c + String(repeating: " ", count: widths[0] - c.count) : "  " + pad(c, widths[i])
      }
      return s + "\n"
    }
    out += line(header)
    for r in rows { out += line(r) }
    let notes = items.flatMap { Self.notes($0) }
    if !notes.isEmpty {
      out += "\n" + notes.map { "- " + $0 + "\n" }.joined()
    }
    return out
  }

  /// What the table leaves out for one item: the C API's class, GoAlloc's spans, the tiny
  /// allocator's terms, a large object's path.
  static func notes(_ item: Item) -> [String] {
    let e = item.explanation
    let who = item.layout == nil ? "\(e.size) B" : item.label
    var out: [String] = []
    if e.isLarge {
      out.append("\(who): a large object: a span of \(e.spanPages) pages (\(e.objectSize) B) of its own, \(e.wastePerObject) B unused at its end"
                 + (e.spanPages <= 32 ? "; freed, it waits in the thread's LargeBins (up to 256 KiB) for the next request of \(e.spanPages) pages" : ""))
      return out
    }
    if e.mallocSizeClass != e.sizeClass {
      out.append("\(who): C malloc and goalloc_gc_* (16-byte aligned from 16 B up) use class \(e.mallocSizeClass) (\(e.mallocObjectSize) B): \(e.mallocObjectSize - e.size) B wasted per object")
    }
    if let per = e.tinyPerBlock, let waste = e.tinyWastePerBlock {
      let pointers = item.layout?.holdsPointers ?? false
      if pointers {
        out.append("\(who): holds pointers, so it never goes to the tiny allocator (scan span class \(e.scanSpanClass))")
      } else {
        out.append("\(who): noscan requests from the Swift API (GoAlloc.allocate(\(e.size))) share 16 B tiny blocks (GoAlloc's span class \(SizeExplanation.tinySpanClass)): \(per) per block, \(waste) B of each block unused; a block is freed when all of its objects are. C malloc never uses tiny blocks")
      }
    }
    if e.goallocSpanPages != e.spanPages {
      out.append("\(who): GoAlloc's spans of class \(e.sizeClass) after the class's first ones are \(e.goallocSpanPages) pages (\(e.goallocObjectsPerSpan) objects), \(e.goallocSpanPages / e.spanPages) of Go's spans back to back: the same tail waste per byte")
    }
    return out
  }

  static func pad(_ v: some CustomStringConvertible, _ width: Int) -> String {
    let s = v.description
    return s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
  }

  // MARK: JSON

  static func renderJSON(_ items: [Item]) -> String {
    var objects: [String] = []
    for item in items {
      let e = item.explanation
      var f: [(String, String)] = [
        ("size", "\(e.size)"),
        ("large", "\(e.isLarge)"),
        ("size_class", "\(e.sizeClass)"),
        ("object_size", "\(e.objectSize)"),
        ("span_bytes", "\(e.spanBytes)"),
        ("span_pages", "\(e.spanPages)"),
        ("objects_per_span", "\(e.objectsPerSpan)"),
        ("waste_per_object", "\(e.wastePerObject)"),
        ("tail_waste", "\(e.tailWaste)"),
        ("waste_per_span", "\(e.wastePerSpan)"),
        ("waste_per_span_percent", e.wastePerSpanPercentText),
        ("scan_span_class", "\(e.scanSpanClass)"),
        ("noscan_span_class", "\(e.noscanSpanClass)"),
        ("tiny", e.tinyPerBlock.map { "{\"block_bytes\": \(SizeExplanation.tinyBlockSize), \"objects_per_block\": \($0), \"waste_per_block\": \(e.tinyWastePerBlock!), \"span_class\": \(SizeExplanation.tinySpanClass)}" } ?? "null"),
        ("malloc_size_class", "\(e.mallocSizeClass)"),
        ("malloc_object_size", "\(e.mallocObjectSize)"),
        ("goalloc_span_pages", "\(e.goallocSpanPages)"),
        ("goalloc_objects_per_span", "\(e.goallocObjectsPerSpan)"),
      ]
      if let l = item.layout {
        let fields = l.fields.map {
          "{\"type\": \(jsonString($0.type)), \"offset\": \($0.offset), \"size\": \($0.size), \"alignment\": \($0.alignment), \"pointer\": \($0.isPointer)}"
        }
        f.insert(("struct", "{\"size\": \(l.size), \"alignment\": \(l.alignment), \"field_bytes\": \(l.fieldBytes), \"padding_bytes\": \(l.paddingBytes), \"holds_pointers\": \(l.holdsPointers), \"fields\": [\(fields.joined(separator: ", "))]}"), at: 0)
      }
      objects.append("  {" + f.map { "\(jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}")
    }
    return "[\n" + objects.joined(separator: ",\n") + "\n]\n"
  }
}
