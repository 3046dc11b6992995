// HeapMapSVG: draws a HeapMap as an SVG picture a person can read.
//
// Each arena is a block of page cells, `columns` pages (8 KiB each) to a row, in address order
// (128 columns: one row is 1 MiB, a 64 MiB arena is 64 rows). Every span is one <path
// class="span"> over its pages, coloured by its size class — a hue that runs from blue (8 B
// slots) through green and amber to red (32 KiB slots); tiny blocks and large objects have
// colours of their own — and paler the emptier it is (allocated / nelems). Free pages still
// backed by memory are light grey, pages released to the OS are white with grey hatching. Runs
// of `compressRows` or more whole rows that belong to one region (the long free tail of an
// arena, the middle of a huge object) are folded into one thin band with a label. A title with
// the totals and a legend of the classes present come first; hovering a span in a browser shows
// its details (<title>). The GC mode's collected spans are outlined, dashed while they wait for
// the lazy sweep.
import GoAllocCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct HeapMapSVG: Sendable {
  public struct Options: Sendable {
    /// Pages per row.
    public var columns = 128
    /// Side of one page cell, in pixels.
    public var cell = 7.0
    /// Whole rows of one region folded into a band when there are at least this many.
    public var compressRows = 3
    /// Per-span tooltips (<title> children); off keeps the file smaller for huge heaps.
    public var tooltips = true
    public init() {}
  }

  public var options: Options

  public init(options: Options = Options()) {
    self.options = options
  }

  /// Renders `map`; `title` (e.g. the command that made it) goes into the heading.
  public func render(_ map: HeapMap, title: String? = nil) -> String {
    var w = SVGWriter(options: options)
    return w.render(map, title: title)
  }

  /// Renders `map` with default options.
  public static func render(_ map: HeapMap, title: String? = nil) -> String {
    HeapMapSVG().render(map, title: title)
  }

  // MARK: colours

  /// The colour of a full span of this span class.
  public static func baseColour(spanClass: Int, elemSize: Int) -> RGB {
    if spanClass == HeapMap.tinySpanClass { return RGB(0xC2, 0x18, 0x8B) }  // magenta
    if spanClass >> 1 == 0 { return RGB(0x2F, 0x36, 0x40) }                 // dark slate
    let lg = log2(Double(max(8, elemSize)))
    let t = min(1, max(0, (lg - 3) / 12))  // 8 B ... 32 KiB
    return ramp(t)
  }

  /// The fill for a span: its class colour, mixed with white the emptier it is.
  public static func fill(spanClass: Int, elemSize: Int, fullness: Double) -> RGB {
    let f = min(1, max(0, fullness))
    return baseColour(spanClass: spanClass, elemSize: elemSize).mixed(with: RGB(255, 255, 255), (1 - f) * 0.72)
  }

  static let anchors: [RGB] = [
    RGB(0x3B, 0x4C, 0xC0), RGB(0x1F, 0x93, 0xD1), RGB(0x1B, 0x9E, 0x77), RGB(0x7C, 0xB3, 0x2D),
    RGB(0xE6, 0xA8, 0x17), RGB(0xD7, 0x30, 0x1F),
  ]

  static func ramp(_ t: Double) -> RGB {
    let x = t * Double(anchors.count - 1)
    let i = min(anchors.count - 2, Int(x))
    return anchors[i].mixed(with: anchors[i + 1], x - Double(i))
  }

  public struct RGB: Sendable, Equatable {
    public var r: Double, g: Double, b: Double
    public init(_ r: Double, _ g: Double, _ b: Double) { self.r = r; self.g = g; self.b = b }
    public func mixed(with o: RGB, _ t: Double) -> RGB {
      RGB(r + (o.r - r) * t, g + (o.g - g) * t, b + (o.b - b) * t)
    }
    public var hex: String {
      func h(_ v: Double) -> String {
        let i = Int(min(255, max(0, v.rounded())))
        return (i < 16 ? "0" : "") + String(i, radix: 16)
      }
      return "#" + h(r) + h(g) + h(b)
    }
    /// Relative luminance (0 black ... 1 white), to choose a readable text colour on top.
    public var luminance: Double { (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255 }
  }
}

// MARK: - The writer

private struct SVGWriter {
  let options: HeapMapSVG.Options
  var out = ""
  var y = 0.0

  let left = 84.0
  let pad = 16.0
  let bandHeight = 14.0
  let fontFamily = "DejaVu Sans, Verdana, Arial, sans-serif"

  init(options: HeapMapSVG.Options) {
    var o = options
    o.columns = max(1, o.columns)
    o.cell = max(1, o.cell)
    o.compressRows = max(2, o.compressRows)
    self.options = o
  }

  var mapWidth: Double { Double(options.columns) * options.cell }
  var width: Double { left + mapWidth + pad }
  var rowBytes: Int { options.columns * HeapMap.pageBytes }

  mutating func render(_ map: HeapMap, title: String?) -> String {
    var body = ""
    swap(&body, &out)
    y = pad
    heading(map, title: title)
    legend(map)
    arenas(map)
    let height = y + pad
    swap(&body, &out)
    out = """
      <?xml version="1.0" encoding="UTF-8"?>
      <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" \
      viewBox="0 0 \(n(width)) \(n(height))" font-family="\(fontFamily)" font-size="11">
      <defs>
      <pattern id="released" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">\
      <rect width="5" height="5" fill="#ffffff"/><line x1="0" y1="0" x2="0" y2="5" stroke="#c8c8c8" stroke-width="1.2"/></pattern>
      </defs>
      <rect x="0" y="0" width="\(n(width))" height="\(n(height))" fill="#ffffff"/>

      """ + body + "</svg>\n"
    return out
  }

  // MARK: heading and legend

  mutating func heading(_ map: HeapMap, title: String?) {
    let t = map.totals
    y += 16
    var head = "GoAlloc heap map"
    if let title, !title.isEmpty { head += ": " + title }
    text(pad, y, head, size: 16, weight: "bold")
    y += 20
    let share = t.inUseBytes > 0 ? " (\(percent(Double(t.allocatedBytes) / Double(t.inUseBytes))) of it)" : ""
    var line = "in use \(formatBytes(t.inUseBytes)) in \(t.spans) span\(t.spans == 1 ? "" : "s")"
    line += " · in allocated slots \(formatBytes(t.allocatedBytes))\(share)"
    if t.idleSpans > 0 { line += " · \(t.idleSpans) idle large span\(t.idleSpans == 1 ? "" : "s") \(formatBytes(t.idleSpanBytes))" }
    line += " · free \(formatBytes(t.freeBytes)) · released \(formatBytes(t.releasedBytes))"
    line += " · \(t.arenas) arena\(t.arenas == 1 ? "" : "s") of \(formatBytes(map.arenas.first?.bytes ?? 0))"
    text(pad, y, line, size: 12)
    y += 12
  }

  mutating func legend(_ map: HeapMap) {
    y += 10
    // Kinds of pages, and the fullness ramp.
    var x = pad
    let sw = 12.0
    func swatch(_ fill: String, _ label: String, into w: inout SVGWriter, at x: inout Double) {
      w.out += "<rect class=\"key\" x=\"\(n(x))\" y=\"\(n(w.y))\" width=\"\(n(sw))\" height=\"\(n(sw))\" fill=\"\(fill)\" stroke=\"#999999\" stroke-width=\"0.5\"/>\n"
      w.text(x + sw + 4, w.y + sw - 2, label)
      x += sw + 10 + textWidth(label, 11)
    }
    swatch("#d9d9d9", "free pages", into: &self, at: &x)
    swatch("url(#released)", "released to the OS", into: &self, at: &x)
    swatch(HeapMapSVG.baseColour(spanClass: HeapMap.tinySpanClass, elemSize: 16).hex, "tiny blocks (16 B)", into: &self, at: &x)
    swatch(HeapMapSVG.baseColour(spanClass: 0, elemSize: 0).hex, "large objects", into: &self, at: &x)
    if map.spans.contains(where: { $0.state.isCollected }) {
      out += "<rect class=\"key\" x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(sw))\" height=\"\(n(sw))\" fill=\"#ffffff\" stroke=\"#202020\" stroke-width=\"0.8\"/>\n"
      text(x + sw + 4, y + sw - 2, "GC spans (outlined; dashed: not swept yet)")
      x += sw + 10 + textWidth("GC spans (outlined; dashed: not swept yet)", 11)
    }
    x += 8
    text(x, y + sw - 2, "span fullness:")
    x += textWidth("span fullness:", 11) + 6
    text(x, y + sw - 2, "empty", fill: "#555555")
    x += textWidth("empty", 11) + 4
    let sample = HeapMapSVG.baseColour(spanClass: 2 * 20, elemSize: 256)
    for i in 0...4 {
      let f = Double(i) / 4
      let c = sample.mixed(with: HeapMapSVG.RGB(255, 255, 255), (1 - f) * 0.72)
      out += "<rect class=\"key\" x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(sw))\" height=\"\(n(sw))\" fill=\"\(c.hex)\"/>\n"
      x += sw
    }
    text(x + 4, y + sw - 2, "full", fill: "#555555")
    y += sw + 12

    // The size classes present, in class order.
    struct ClassInfo { var spanClassForColour: Int; var elemSize: Int; var spans = 0; var slots = 0; var allocated = 0 }
    var classes: [Int: ClassInfo] = [:]
    for s in map.spans where !s.isLarge && !s.isTiny {
      var c = classes[s.sizeClass] ?? ClassInfo(spanClassForColour: s.spanClass, elemSize: s.elemSize)
      c.spans += 1
      c.slots += s.nelems
      c.allocated += s.allocated
      classes[s.sizeClass] = c
    }
    guard !classes.isEmpty else { return }
    text(pad, y + 10, "size classes (slot size · spans · slots allocated); the hue follows the slot size:", fill: "#333333")
    y += 18
    let colWidth = 158.0
    let perRow = max(1, Int((width - 2 * pad) / colWidth))
    let keys = classes.keys.sorted()
    for (i, k) in keys.enumerated() {
      let c = classes[k]!
      let cx = pad + Double(i % perRow) * colWidth
      let cy = y + Double(i / perRow) * 16
      let colour = HeapMapSVG.baseColour(spanClass: c.spanClassForColour, elemSize: c.elemSize)
      out += "<rect class=\"key\" x=\"\(n(cx))\" y=\"\(n(cy))\" width=\"\(n(sw))\" height=\"\(n(sw))\" fill=\"\(colour.hex)\"><title>class \(k): \(c.elemSize) B slots, \(c.spans) spans, \(c.allocated)/\(c.slots) slots allocated</title></rect>\n"
      let pct = c.slots > 0 ? percent(Double(c.allocated) / Double(c.slots)) : "-"
      text(cx + sw + 4, cy + sw - 2, formatBytes(c.elemSize))
      text(cx + sw + 4 + 54, cy + sw - 2, "×\(c.spans) · \(pct)", size: 10, fill: "#666666")
    }
    y += Double((keys.count + perRow - 1) / perRow) * 16 + 4
  }

  // MARK: arenas

  /// One region's part of one arena, in pages from the arena's base.
  struct Piece { var start: Int; var end: Int; var region: Int }

  mutating func arenas(_ map: HeapMap) {
    // Regions get global ids (a span may continue in the next arena).
    var regions: [HeapMap.Region] = []
    var paths: [String] = []
    var bands: [(x: Double, y: Double, w: Double, h: Double, label: String, dark: Bool)] = []
    let cols = options.columns
    let cell = options.cell
    var carry: Int? = nil  // a span id whose pages run past its arena's end

    for arena in map.arenas {
      y += 14
      let pages = arena.pages
      func pageOf(_ addr: UInt) -> Int {
        addr <= arena.base ? 0 : min(pages, Int((addr - arena.base) / UInt(HeapMap.pageBytes)))
      }
      var pieces: [Piece] = []
      if let c = carry, regions[c].end > arena.base {
        let e = pageOf(regions[c].end)
        if e > 0 { pieces.append(Piece(start: 0, end: e, region: c)) }
        if regions[c].end <= arena.end { carry = nil }
      } else {
        carry = nil
      }
      for r in arena.regions {
        let id = regions.count
        regions.append(r)
        paths.append("")
        let s = pageOf(r.base), e = pageOf(r.end)
        if e > s { pieces.append(Piece(start: s, end: e, region: id)) }
        if case .span = r, r.end > arena.end { carry = id }
      }

      // The arena's own totals (a span that runs on into the next arena counts its pages here).
      var used = 0, free = 0, released = 0, spanCount = 0
      for p in pieces {
        switch regions[p.region] {
        case .span: used += p.end - p.start; spanCount += 1
        case .free(let f): if f.released { released += p.end - p.start } else { free += p.end - p.start }
        }
      }
      let pb = HeapMap.pageBytes
      var head = "arena 0x\(String(arena.base, radix: 16)) · \(formatBytes(arena.bytes)) · in use \(formatBytes(used * pb))"
      head += " (\(spanCount) span\(spanCount == 1 ? "" : "s")) · free \(formatBytes(free * pb)) · released \(formatBytes(released * pb))"
      text(pad, y, head, size: 12, weight: "bold")
      y += 6

      // Rows owned whole by one piece; runs of them fold into bands.
      let rows = (pages + cols - 1) / cols
      var owner = [Int](repeating: -1, count: rows)
      for p in pieces {
        var r = (p.start + cols - 1) / cols
        while r < rows && min(pages, (r + 1) * cols) <= p.end {
          owner[r] = p.region
          r += 1
        }
      }
      var rowY = [Double](repeating: 0, count: rows)
      var bandOf = [Int](repeating: -1, count: rows)  // index into `bands`
      let top = y + 4
      var cy = top
      var r = 0
      var lastLabelRow = -100
      while r < rows {
        if owner[r] >= 0 {
          var e = r
          while e + 1 < rows && owner[e + 1] == owner[r] { e += 1 }
          if e - r + 1 >= options.compressRows {
            let region = regions[owner[r]]
            let n = e - r + 1
            let label: String
            let dark: Bool
            switch region {
            case .free(let f):
              label = "⋯ \(formatBytes(n * rowBytes)) \(f.released ? "released to the OS" : "free") (+\(formatBytes(r * rowBytes)) to +\(formatBytes((e + 1) * rowBytes))) ⋯"
              dark = false
            case .span(let s):
              label = "⋯ \(formatBytes(n * rowBytes)) more of the \(formatBytes(s.bytes)) \(s.isLarge ? "large object" : "span") at 0x\(String(s.base, radix: 16)) ⋯"
              dark = HeapMapSVG.fill(spanClass: s.spanClass, elemSize: s.elemSize, fullness: s.fullness).luminance < 0.5
            }
            bands.append((left, cy + 1, mapWidth, bandHeight - 2, label, dark))
            for k in r...e { rowY[k] = cy; bandOf[k] = bands.count - 1 }
            cy += bandHeight
            r = e + 1
            continue
          }
        }
        rowY[r] = cy
        if r % 8 == 0 || r - lastLabelRow > 8 || (r > 0 && bandOf[r - 1] >= 0) {
          text(left - 6, cy + cell - 0.5, r == 0 ? "+0" : "+" + formatBytes(r * rowBytes), size: 9, fill: "#666666", anchor: "end")
          lastLabelRow = r
        }
        cy += cell
        r += 1
      }
      // The arena's frame.
      out += "<rect class=\"arena\" x=\"\(n(left - 1))\" y=\"\(n(top - 1))\" width=\"\(n(mapWidth + 2))\" height=\"\(n(cy - top + 2))\" fill=\"none\" stroke=\"#888888\" stroke-width=\"1\"/>\n"

      // Each piece as rectangles row by row (a band once).
      for p in pieces {
        var d = ""
        var lastBand = -1
        var page = p.start
        while page < p.end {
          let row = page / cols
          let rowEnd = min(p.end, (row + 1) * cols)
          if bandOf[row] >= 0 {
            if bandOf[row] != lastBand {
              let b = bands[bandOf[row]]
              d += rectPath(b.x + 0.5, b.y, b.w - 1, b.h)
              lastBand = bandOf[row]
            }
          } else {
            let c0 = page - row * cols, c1 = rowEnd - row * cols
            d += rectPath(left + Double(c0) * cell + 0.5, rowY[row] + 0.5, Double(c1 - c0) * cell - 1, cell - 1)
          }
          page = rowEnd
        }
        paths[p.region] += d
      }
      y = cy + 4
    }

    // One element per region.
    for (id, region) in regions.enumerated() where !paths[id].isEmpty {
      switch region {
      case .span(let s):
        let fill = HeapMapSVG.fill(spanClass: s.spanClass, elemSize: s.elemSize, fullness: s.fullness).hex
        out += "<path class=\"span\" data-class=\"\(s.sizeClass)\" data-elemsize=\"\(s.elemSize)\" data-allocated=\"\(s.allocated)\" data-nelems=\"\(s.nelems)\" fill=\"\(fill)\" d=\"\(paths[id])\""
        if s.state.isCollected {
          // GC mode spans: outlined (dashed while not swept), scan or noscan in data-gc.
          out += " data-gc=\"\(s.spanClass & 1 == 1 ? "noscan" : "scan")\" stroke=\"#202020\" stroke-width=\"0.8\""
          if s.state == .gcunswept { out += " stroke-dasharray=\"2,1.5\"" }
        }
        if options.tooltips {
          out += "><title>\(escape(spanTooltip(s)))</title></path>\n"
        } else {
          out += "/>\n"
        }
      case .free(let f):
        let fill = f.released ? "url(#released)" : "#d9d9d9"
        out += "<path class=\"\(f.released ? "released" : "free")\" fill=\"\(fill)\" d=\"\(paths[id])\""
        if options.tooltips {
          out += "><title>0x\(String(f.base, radix: 16)): \(f.npages) free page\(f.npages == 1 ? "" : "s") (\(formatBytes(f.bytes)))\(f.released ? ", released to the OS" : "")</title></path>\n"
        } else {
          out += "/>\n"
        }
      }
    }
    for b in bands {
      text(b.x + b.w / 2, b.y + b.h - 3, b.label, size: 9.5, fill: b.dark ? "#ffffff" : "#444444", anchor: "middle")
    }
  }

  func spanTooltip(_ s: HeapMap.Span) -> String {
    let addr = "0x" + String(s.base, radix: 16)
    let pages = "\(s.npages) page\(s.npages == 1 ? "" : "s")"
    let gc = s.state.isCollected ? (s.spanClass & 1 == 1 ? "collected noscan " : "collected scan ") : ""
    if s.state == .idle { return "\(addr): freed large span kept for reuse, \(pages) (\(formatBytes(s.bytes))), idle" }
    if s.isLarge { return "\(addr): \(gc)large object, \(pages) (\(formatBytes(s.bytes)))" }
    let what = s.isTiny ? "tiny blocks (16 B)" : "\(gc)class \(s.sizeClass) (\(s.elemSize) B slots)"
    return "\(addr): \(pages), \(what), \(s.allocated)/\(s.nelems) allocated (\(percent(s.fullness))), \(s.state.rawValue)"
  }

  // MARK: primitives

  func rectPath(_ x: Double, _ y: Double, _ w: Double, _ h: Double) -> String {
    "M\(n(x)) \(n(y))h\(n(w))v\(n(h))h\(n(-w))z"
  }

  mutating func text(_ x: Double, _ y: Double, _ s: String, size: Double = 11, weight: String? = nil,
                     fill: String = "#222222", anchor: String? = nil) {
    out += "<text x=\"\(n(x))\" y=\"\(n(y))\""
    if size != 11 { out += " font-size=\"\(n(size))\"" }
    if let weight { out += " font-weight=\"\(weight)\"" }
    if let anchor { out += " text-anchor=\"\(anchor)\"" }
    out += " fill=\"\(fill)\">\(escape(s))</text>\n"
  }

}

/// About how wide `s` is in the sans-serif font at `size` px.
private func textWidth(_ s: String, _ size: Double) -> Double { Double(s.count) * size * 0.58 }

/// A coordinate with at most two decimals, no trailing zeros.
private func n(_ v: Double) -> String {
  let scaled = (v * 100).rounded()
  let i = Int(scaled)
  let whole = i / 100, frac = abs(i % 100)
  let sign = i < 0 && whole == 0 ? "-" : ""
  if frac == 0 { return sign + String(whole) }
  if frac % 10 == 0 { return sign + String(whole) + "." + String(frac / 10) }
  return sign + String(whole) + "." + (frac < 10 ? "0" : "") + String(frac)
}

func escape(_ s: String) -> String {
  var r = ""
  r.reserveCapacity(s.utf8.count)
  for ch in s {
    switch ch {
    case "&": r += "&amp;"
    case "<": r += "&lt;"
    case ">": r += "&gt;"
    case "\"": r += "&quot;"
    default: r.append(ch)
    }
  }
  return r
}

/// Shorthands for the renderer (GoAllocFormat.swift).
func formatBytes(_ b: Int) -> String { GoAllocFormat.bytes(b) }
func percent(_ f: Double) -> String { GoAllocFormat.percent(f) }
