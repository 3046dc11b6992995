// The SVG chart of `goalloc bench` (OUT/results.svg): per workload, one bar per allocator, its
// height the ratio to the best peer, for wall time and peak RSS.
//
// Value labels never overlap: each is written vertically within its own bar's column (above the
// bar, or inside its top when there is no room above, as for bars cut at the panel's top), and
// the picture is at least as wide as its title and legend.

import GoAllocTools

enum Chart {
  /// The height a value label of `text` takes up, written vertically at font size 9.
  static func labelLength(_ text: String) -> Double { Double(text.count) * 5.6 + 2 }

  static let colours = ["glibc": "#8c8c8c", "goalloc": "#d62728", "jemalloc": "#1f77b4",
                        "tcmalloc": "#2ca02c", "mimalloc": "#ff7f0e", "go": "#17becf"]

  /// Two panels (wall time, peak RSS), each with a group of bars per workload: one bar per
  /// allocator, its height the ratio to the best peer, a dashed line at 1.0.
  static func svg(_ r: Results) -> String {
    let n = r.allocators.count, bar = 13.0, groupGap = 22.0
    let groupWidth = Double(n) * bar + groupGap
    let left = 74.0, right = 16.0, top = 92.0, panelHeight = 230.0, panelGap = 96.0
    // Wide enough for the title and the legend, however few workloads there are.
    let title = "GoAlloc vs peers: median of runs, ratio to the best peer per workload (lower is better)"
    let note = "(best peer = best of glibc, jemalloc, tcmalloc, mimalloc)"
    let legendEnd = left + r.allocators.reduce(0.0) { $0 + 28 + Double($1.name.count) * 7.5 } + 10 + Double(note.count) * 6.8
    let width = max(left + right + groupWidth * Double(r.workloads.count), Double(title.count) * 9.4 + 40, legendEnd + right)
    let height = top + 2 * panelHeight + panelGap + 60
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
    s += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n"
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    s += "<text x=\"\(Int(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
    s += "\(title)</text>\n"
    // Legend.
    var x = left
    for allocator in r.allocators {
      s += "<rect x=\"\(x)\" y=\"36\" width=\"14\" height=\"14\" fill=\"\(colours[allocator.name] ?? "#444")\"/>"
      s += "<text x=\"\(x + 19)\" y=\"48\">\(allocator.name)</text>\n"
      x += 28 + Double(allocator.name.count) * 7.5
    }
    s += "<text x=\"\(x + 10)\" y=\"48\" fill=\"#555\">\(note)</text>\n"
    for (p, (metric, title)) in [(Results.Metric.wall, "Wall time / best peer"), (.rss, "Peak RSS / best peer")].enumerated() {
      let y0 = top + Double(p) * (panelHeight + panelGap)
      s += panel(r, metric: metric, title: title, left: left, y0: y0, height: panelHeight,
                 width: width - left - right, bar: bar, groupWidth: groupWidth)
    }
    s += "<text x=\"\(Int(width / 2))\" y=\"\(Int(height - 12))\" text-anchor=\"middle\">workload</text>\n"
    return s + "</svg>\n"
  }

  static func panel(_ r: Results, metric: Results.Metric, title: String, left: Double, y0: Double, height: Double,
                    width: Double, bar: Double, groupWidth: Double) -> String {
    var maxRatio = 1.0
    for w in r.workloads.indices { for a in r.allocators.indices { maxRatio = max(maxRatio, r.ratio(metric, w, a) ?? 0) } }
    let cap = min(4.0, max(1.5, ((maxRatio + 0.1) * 2).rounded(.up) / 2))   // headroom, in steps of 0.5
    let yOf = { (v: Double) -> Double in y0 + height - min(v, cap) / cap * height }
    var s = "<text x=\"\(left)\" y=\"\(y0 - 22)\" font-size=\"13\" font-weight=\"bold\">\(title)"
    s += "<tspan dx=\"8\" font-weight=\"normal\" fill=\"#555\">(bars above \(GoAllocFormat.fixed(cap, 1)) are cut; their value is written inside them)</tspan></text>\n"
    // Axes, grid and ticks.
    let step = cap <= 2 ? 0.25 : 0.5
    var t = 0.0
    while t <= cap + 1e-9 {
      let y = yOf(t)
      s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + width)\" y2=\"\(y)\" stroke=\"#e4e4e4\"/>"
      s += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(GoAllocFormat.fixed(t, 2))</text>\n"
      t += step
    }
    s += "<line x1=\"\(left)\" y1=\"\(yOf(1))\" x2=\"\(left + width)\" y2=\"\(yOf(1))\" stroke=\"#000\" stroke-dasharray=\"5,4\"/>\n"
    s += "<line x1=\"\(left)\" y1=\"\(y0)\" x2=\"\(left)\" y2=\"\(y0 + height)\" stroke=\"#000\"/>"
    s += "<line x1=\"\(left)\" y1=\"\(y0 + height)\" x2=\"\(left + width)\" y2=\"\(y0 + height)\" stroke=\"#000\"/>\n"
    let yMid = y0 + height / 2
    s += "<text transform=\"translate(\(left - 46),\(yMid)) rotate(-90)\" text-anchor=\"middle\">"
    s += "\(metric == .rss ? "peak RSS" : "time") ratio to best peer</text>\n"
    // Bars.
    for (w, workload) in r.workloads.enumerated() {
      let gx = left + Double(w) * groupWidth + 11
      for (a, allocator) in r.allocators.enumerated() {
        let bx = gx + Double(a) * bar
        let colour = colours[allocator.name] ?? "#444"
        let cell = r.cells[w][a]
        if !cell.attempted { continue }
        if !cell.failures.isEmpty {
          s += "<text x=\"\(bx + bar / 2)\" y=\"\(y0 + height - 4)\" text-anchor=\"middle\" font-size=\"11\" fill=\"\(colour)\" font-weight=\"bold\">X</text>\n"
          continue
        }
        guard let v = r.ratio(metric, w, a) else { continue }
        let y = yOf(v)
        s += "<rect x=\"\(bx)\" y=\"\(y)\" width=\"\(bar - 2)\" height=\"\(y0 + height - y)\" fill=\"\(colour)\">"
        s += "<title>\(workload.name) \(allocator.name): \(Fmt.ratio(v))</title></rect>\n"
        if v > cap {   // clipped: say how tall it is, inside the top of the bar
          s += verticalLabel(GoAllocFormat.fixed(v, 1), centre: bx + (bar - 2) / 2, top: y0 + 3, fill: "white")
        } else if allocator.name == "goalloc" {
          s += valueLabel(GoAllocFormat.fixed(v, 2), centre: bx + (bar - 2) / 2, barTop: y, panelTop: y0,
                          barBottom: y0 + height, colour: colour)
        }
      }
      s += "<text x=\"\(gx + Double(r.allocators.count) * bar / 2)\" y=\"\(y0 + height + 16)\" text-anchor=\"middle\">\(workload.name)</text>\n"
    }
    return s
  }

  /// A bar's value above it in its colour, or inside its top in white when the panel has no room
  /// above it; nothing when the bar is too short for it either.
  static func valueLabel(_ text: String, centre: Double, barTop: Double, panelTop: Double, barBottom: Double,
                         colour: String) -> String {
    let length = labelLength(text)
    if barTop - 3 - length >= panelTop {
      return verticalLabel(text, centre: centre, bottom: barTop - 3, fill: colour)
    }
    if barBottom - barTop >= length + 4 {
      return verticalLabel(text, centre: centre, top: barTop + 3, fill: "white")
    }
    return ""
  }

  /// Text turned to read upwards, centred on x = `centre`, ending at `top` or starting at `bottom`.
  static func verticalLabel(_ text: String, centre: Double, top: Double? = nil, bottom: Double? = nil,
                            fill: String) -> String {
    let x = centre + 3.2   // the glyphs lie left of the baseline once turned
    let (y, anchor) = top.map { ($0, "end") } ?? (bottom ?? 0, "start")
    return "<text transform=\"translate(\(GoAllocFormat.fixed(x, 1)),\(GoAllocFormat.fixed(y, 1))) rotate(-90)\" "
      + "text-anchor=\"\(anchor)\" font-size=\"9\" fill=\"\(fill)\">\(text)</text>\n"
  }
}
