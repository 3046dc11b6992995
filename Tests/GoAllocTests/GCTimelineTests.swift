// GCTimelineSVG and its summary, on collections made up here.
import GoAllocTools
import Testing

@Suite("GC timeline SVG")
struct GCTimelineTests {
  static func collection(_ n: Int, ms t: Int, before: Int, after: Int, pauseUs: Int, forced: Bool = false) -> TraceCollection {
    TraceCollection(number: n, timeNs: t * 1_000_000, heapBefore: before, heapAfter: after, marked: after / 2,
                    goal: after * 2, pauseNs: pauseUs * 1000, forced: forced, afterEvents: 0)
  }

  @Test("summary: counts, the longest, the 99th percentile and the total pause, peaks")
  func summary() {
    var cs: [TraceCollection] = []
    for i in 1...200 { cs.append(Self.collection(i, ms: i * 10, before: 8 << 20, after: 4 << 20, pauseUs: i == 100 ? 9000 : i == 7 ? 5000 : i == 8 ? 4000 : 100, forced: i % 50 == 0)) }
    let s = GCTimelineSummary(cs)
    #expect(s.collections == 200 && s.forced == 4)
    #expect(s.maxPauseNs == 9_000_000 && s.p99PauseNs == 4_000_000)  // rank 198 of 200: the third longest
    #expect(s.totalPauseNs == 197 * 100_000 + 18_000_000)
    #expect(s.peakHeap == 8 << 20 && s.peakGoal == 8 << 20 && s.durationNs == 2_000_000_000)
  }

  @Test("one pause bar and one marked point per collection; forced ones hollow; escaped title")
  func svg() {
    let cs = [Self.collection(1, ms: 5, before: 4 << 20, after: 1 << 20, pauseUs: 800),
              Self.collection(2, ms: 9, before: 3 << 20, after: 2 << 20, pauseUs: 1200, forced: true)]
    let svg = GCTimelineSVG.render(cs, title: "prog <a&b>")
    #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
    #expect(svg.components(separatedBy: "data-series=\"pause\"").count == 3)
    #expect(svg.components(separatedBy: "data-series=\"marked\"").count == 3)
    #expect(svg.contains("prog &lt;a&amp;b&gt;") && !svg.contains("<a&b>"))
    #expect(svg.contains("fill=\"none\" stroke=\"#c0392b\""))  // the forced one
    #expect(svg.contains("1.20 ms"))  // the longest pause labels the strip
  }

  @Test("no collection: a picture that says so")
  func empty() {
    let svg = GCTimelineSVG.render([])
    #expect(svg.contains("no collection ran") && svg.hasSuffix("</svg>\n"))
  }
}
