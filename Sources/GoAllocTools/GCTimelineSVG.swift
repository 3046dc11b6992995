// GCTimelineSVG: a run of the GC mode drawn against time, from its collections (`g` lines of an
// allocation trace or of GOALLOC_DEBUG=gclog): the heap in use (rising while the program
// allocates, dropping at each collection: before -> after), the goal the pacer set after each
// collection (a step line), what each mark found live, and every stop-the-world pause as a bar
// in a strip of its own (its height against the longest). Forced collections (goalloc_gc_collect,
// GC_gcollect) are drawn hollow. One self-contained SVG; nothing but the collections is needed.

/// What a timeline shows in numbers (also printed by `goalloc gc-timeline`).
public struct GCTimelineSummary: Sendable, Equatable {
  public var collections: Int
  public var forced: Int
  public var durationNs: Int
  public var maxPauseNs: Int
  public var totalPauseNs: Int
  public var peakHeap: Int
  public var peakGoal: Int
  /// The 99th percentile pause (nearest rank).
  public var p99PauseNs: Int

  public init(_ collections: [TraceCollection]) {
    self.collections = collections.count
    forced = collections.filter(\.forced).count
    durationNs = collections.map(\.timeNs).max() ?? 0
    maxPauseNs = collections.map(\.pauseNs).max() ?? 0
    totalPauseNs = collections.reduce(0) { $0 + $1.pauseNs }
    peakHeap = collections.map { max($0.heapBefore, $0.heapAfter) }.max() ?? 0
    peakGoal = collections.map(\.goal).max() ?? 0
    let sorted = collections.map(\.pauseNs).sorted()
    p99PauseNs = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
  }

  public var description: String {
    "\(collections) collections (\(forced) forced) in \(GoAllocFormat.fixed(Double(durationNs) / 1e9, 3)) s; "
      + "pauses: max \(GCTimelineSVG.ms(maxPauseNs)) ms, p99 \(GCTimelineSVG.ms(p99PauseNs)) ms, "
      + "total \(GCTimelineSVG.ms(totalPauseNs)) ms; peak heap \(GoAllocFormat.bytes(peakHeap)), "
      + "peak goal \(GoAllocFormat.bytes(peakGoal))"
  }
}

public enum GCTimelineSVG {
  static let width = 960.0, plotLeft = 78.0, plotRight = 930.0
  static let heapTop = 70.0, heapBottom = 330.0, pauseTop = 360.0, pauseBottom = 430.0
  static let height = 500.0

  /// The SVG of `collections` (in order). `title`: what ran (the command line).
  public static func render(_ collections: [TraceCollection], title: String? = nil) -> String {
    let summary = GCTimelineSummary(collections)
    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
      viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
      <rect width="100%" height="100%" fill="#ffffff"/>
      <text x="\(plotLeft)" y="24" font-size="15" font-weight="bold">GC timeline\(title.map { ": " + escape($0) } ?? "")</text>
      <text x="\(plotLeft)" y="44" fill="#444">\(escape(summary.description))</text>

      """
    if collections.isEmpty {
      out += "<text x=\"\(plotLeft)\" y=\"\(heapTop + 40)\">no collection ran</text>\n</svg>\n"
      return out
    }
    // Cycle i runs from start_i (its end less its pause) to end_i; time 0 is the GC mode's start.
    let ends = collections.map { Double($0.timeNs) }
    let starts = collections.map { Double(max(0, $0.timeNs - $0.pauseNs)) }
    let tMax = max(ends.max() ?? 1, 1) * 1.02
    let yUnit = byteUnit(Double(max(summary.peakHeap, summary.peakGoal, 1)))
    let yMax = niceCeiling(Double(max(summary.peakHeap, summary.peakGoal, 1)) * 1.05 / yUnit) * yUnit
    func x(_ t: Double) -> Double { plotLeft + (plotRight - plotLeft) * t / tMax }
    func y(_ b: Double) -> Double { heapBottom - (heapBottom - heapTop) * b / yMax }

    // Axes and ticks.
    out += gridAndAxes(tMax: tMax, yMax: yMax, yUnit: yUnit, x: x, y: y)

    // Goal: a step line, set at the end of each collection.
    var goal = ""
    for (i, c) in collections.enumerated() {
      let next = i + 1 < collections.count ? starts[i + 1] : tMax
      goal += "\(f(x(ends[i]))),\(f(y(Double(c.goal)))) \(f(x(next))),\(f(y(Double(c.goal)))) "
    }
    out += "<polyline data-series=\"goal\" points=\"\(goal)\" fill=\"none\" stroke=\"#d08000\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"/>\n"

    // Heap in use: up to `before` at each start, down to `after` at each end.
    var heap = "\(f(x(0))),\(f(y(0))) "
    for (i, c) in collections.enumerated() {
      heap += "\(f(x(starts[i]))),\(f(y(Double(c.heapBefore)))) \(f(x(ends[i]))),\(f(y(Double(c.heapAfter)))) "
    }
    out += "<polyline data-series=\"heap\" points=\"\(heap)\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1.5\"/>\n"

    // Marked (live) at each collection, and the pause strip.
    let pauseMax = Double(max(summary.maxPauseNs, 1))
    for (i, c) in collections.enumerated() {
      let fill = c.forced ? "none" : "#2a9d4a"
      out += "<circle data-series=\"marked\" cx=\"\(f(x(ends[i])))\" cy=\"\(f(y(Double(c.marked))))\" r=\"2.5\" "
        + "fill=\"\(fill)\" stroke=\"#2a9d4a\"><title>gc \(c.number): \(GoAllocFormat.bytes(c.heapBefore)) -> "
        + "\(GoAllocFormat.bytes(c.heapAfter)), \(GoAllocFormat.bytes(c.marked)) marked, "
        + "\(GoAllocFormat.bytes(c.goal)) goal, pause \(ms(c.pauseNs)) ms\(c.forced ? " (forced)" : "")</title></circle>\n"
      let h = max(1, (pauseBottom - pauseTop) * Double(c.pauseNs) / pauseMax)
      let w = max(1.5, x(ends[i]) - x(starts[i]))
      out += "<rect data-series=\"pause\" x=\"\(f(x(starts[i])))\" y=\"\(f(pauseBottom - h))\" width=\"\(f(w))\" "
        + "height=\"\(f(h))\" fill=\"\(c.forced ? "none" : "#c0392b")\" stroke=\"#c0392b\" stroke-width=\"0.8\">"
        + "<title>gc \(c.number): pause \(ms(c.pauseNs)) ms at \(GoAllocFormat.fixed(Double(c.timeNs) / 1e9, 4)) s</title></rect>\n"
    }
    out += "<text x=\"\(plotLeft - 8)\" y=\"\(f(pauseTop + 4))\" text-anchor=\"end\" fill=\"#c0392b\">\(ms(summary.maxPauseNs)) ms</text>\n"
    out += "<text x=\"\(plotLeft - 8)\" y=\"\(f(pauseBottom))\" text-anchor=\"end\" fill=\"#c0392b\">0</text>\n"
    out += "<line x1=\"\(plotLeft)\" y1=\"\(pauseBottom)\" x2=\"\(plotRight)\" y2=\"\(pauseBottom)\" stroke=\"#888\"/>\n"

    // Legend.
    let ly = height - 22
    out += legend(plotLeft, ly, "#1f5fbf", "heap in use", dashed: false)
    out += legend(plotLeft + 150, ly, "#d08000", "goal", dashed: true)
    out += "<circle cx=\"\(f(plotLeft + 262))\" cy=\"\(f(ly - 4))\" r=\"3\" fill=\"#2a9d4a\"/>"
      + "<text x=\"\(f(plotLeft + 272))\" y=\"\(f(ly))\">marked (live)</text>\n"
    out += "<rect x=\"\(f(plotLeft + 390))\" y=\"\(f(ly - 10))\" width=\"10\" height=\"10\" fill=\"#c0392b\"/>"
      + "<text x=\"\(f(plotLeft + 406))\" y=\"\(f(ly))\">stop-the-world pause</text>\n"
    out += "<rect x=\"\(f(plotLeft + 560))\" y=\"\(f(ly - 10))\" width=\"10\" height=\"10\" fill=\"none\" stroke=\"#c0392b\"/>"
      + "<text x=\"\(f(plotLeft + 576))\" y=\"\(f(ly))\">forced collection (hollow)</text>\n"
    out += "</svg>\n"
    return out
  }

  static func gridAndAxes(tMax: Double, yMax: Double, yUnit: Double, x: (Double) -> Double, y: (Double) -> Double) -> String {
    var out = ""
    let yStep = niceStep(yMax / yUnit / 5) * yUnit  // (whole KiB, MiB or GiB steps)
    var b = 0.0
    while b <= yMax + 1 {
      out += "<line x1=\"\(plotLeft)\" y1=\"\(f(y(b)))\" x2=\"\(plotRight)\" y2=\"\(f(y(b)))\" stroke=\"#e4e4e4\"/>"
        + "<text x=\"\(plotLeft - 8)\" y=\"\(f(y(b) + 4))\" text-anchor=\"end\">\(escape(GoAllocFormat.bytes(Int(b))))</text>\n"
      b += yStep
    }
    let tStep = niceStep(tMax / 8)
    var t = 0.0
    while t <= tMax {
      out += "<line x1=\"\(f(x(t)))\" y1=\"\(heapTop)\" x2=\"\(f(x(t)))\" y2=\"\(pauseBottom)\" stroke=\"#f0f0f0\"/>"
        + "<text x=\"\(f(x(t)))\" y=\"\(f(pauseBottom + 16))\" text-anchor=\"middle\">\(timeLabel(t, step: tStep))</text>\n"
      t += tStep
    }
    out += "<line x1=\"\(plotLeft)\" y1=\"\(heapBottom)\" x2=\"\(plotRight)\" y2=\"\(heapBottom)\" stroke=\"#888\"/>\n"
    out += "<line x1=\"\(plotLeft)\" y1=\"\(heapTop)\" x2=\"\(plotLeft)\" y2=\"\(heapBottom)\" stroke=\"#888\"/>\n"
    out += "<text x=\"\(f((plotLeft + plotRight) / 2))\" y=\"\(f(pauseBottom + 32))\" text-anchor=\"middle\" fill=\"#444\">"
      + "time since the GC mode started</text>\n"
    out += "<text x=\"\(f(plotLeft - 8))\" y=\"\(f(pauseTop - 8))\" text-anchor=\"end\" fill=\"#c0392b\">pauses</text>\n"
    return out
  }

  static func legend(_ x0: Double, _ y0: Double, _ colour: String, _ text: String, dashed: Bool) -> String {
    "<line x1=\"\(f(x0))\" y1=\"\(f(y0 - 4))\" x2=\"\(f(x0 + 24))\" y2=\"\(f(y0 - 4))\" stroke=\"\(colour)\" stroke-width=\"2\""
      + (dashed ? " stroke-dasharray=\"6 3\"" : "") + "/><text x=\"\(f(x0 + 30))\" y=\"\(f(y0))\">\(text)</text>\n"
  }

  /// The binary unit (1, KiB, MiB, GiB) in which v reads as at least 1.
  static func byteUnit(_ v: Double) -> Double {
    var u = 1.0
    while u * 1024 <= v && u < 1024 * 1024 * 1024 { u *= 1024 }
    return u
  }

  /// 1, 2 or 5 times a power of ten, at least v.
  static func niceStep(_ v: Double) -> Double {
    if v <= 0 { return 1 }
    var p = 1.0
    while p * 10 <= v { p *= 10 }
    while p > v { p /= 10 }
    for m in [1.0, 2.0, 5.0, 10.0] where p * m >= v { return p * m }
    return p * 10
  }

  static func niceCeiling(_ v: Double) -> Double {
    let s = niceStep(v / 5)
    return (v / s).rounded(.up) * s
  }

  static func timeLabel(_ ns: Double, step: Double) -> String {
    if step >= 1e8 { return GoAllocFormat.fixed(ns / 1e9, step >= 1e9 ? 0 : 1) + " s" }
    if step >= 1e5 { return GoAllocFormat.fixed(ns / 1e6, step >= 1e6 ? 0 : 1) + " ms" }
    return GoAllocFormat.fixed(ns / 1e3, 0) + " µs"
  }

  static func ms(_ ns: Int) -> String {
    let v = Double(ns) / 1e6
    return GoAllocFormat.fixed(v, v >= 10 ? 1 : v >= 1 ? 2 : 3)
  }

  static func f(_ v: Double) -> String { GoAllocFormat.fixed(v, 1) }
}
