// Seeing inside: allocation traces (record, summarize, replay), heap maps drawn as SVG, the
// stats command and the sampled heap profile, checked against traced.c, a program whose
// allocations are known (distinctive sizes; libc's own allocations are ignored).
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite("observability: traces, heap maps, stats, heap profile")
struct ObservabilityTests {
  // MARK: what traced.c does (keep in step with Fixtures/traced.c)

  static let sizes = [1111, 2223, 3335, 4447, 5559, 7771, 9997, 13131, 21213, 30303, 70001, 123457]
  static let freedOrder = [3, 0, 8, 10, 5]
  static let threadObject = 6

  /// What the program printed about itself.
  struct ProgramReport {
    var addresses: [UInt] = []
    var frees: [(index: Int, address: UInt)] = []
    var liveCount = 0
    var liveBytes = 0
  }

  static func programReport(_ stdout: String) throws -> ProgramReport {
    var r = ProgramReport()
    var addrs = [UInt?](repeating: nil, count: sizes.count)
    for line in stdout.split(separator: "\n") {
      let f = line.split(separator: " ")
      if f.first == "obj", f.count == 4, let i = Int(f[1]), let a = hex(f[3]) { addrs[i] = a }
      if f.first == "free", f.count == 3, let i = Int(f[1]), let a = hex(f[2]) { r.frees.append((i, a)) }
      if f.first == "live", f.count == 3, let n = Int(f[1]), let b = Int(f[2]) { r.liveCount = n; r.liveBytes = b }
    }
    r.addresses = try addrs.map { try #require($0, "traced.c did not print every object\n\(stdout)") }
    return r
  }

  static func hex<S: StringProtocol>(_ s: S) -> UInt? {
    s.hasPrefix("0x") ? UInt(s.dropFirst(2), radix: 16) : nil
  }

  // MARK: reading a trace (independently of GoAlloc's own reader)

  struct Event { var alloc: Bool; var tid: Int; var address: UInt; var size: Int; var pcs: Int }

  static func events(_ trace: String) throws -> (events: [Event], maps: Int) {
    var out: [Event] = []
    var maps = 0
    let lines = trace.split(separator: "\n")
    #expect(lines.first == "# goalloc allocfreetrace v1")
    for line in lines {
      if line.hasPrefix("# map ") { maps += 1; continue }
      if line.hasPrefix("#") { continue }
      let f = line.split(separator: " ")
      if f.first == "a" {
        guard f.count >= 5, let tid = Int(f[1]), let a = hex(f[2]), let size = Int(f[3]), Int(f[4]) != nil else {
          Issue.record("malformed allocation line: \(line)"); continue
        }
        out.append(Event(alloc: true, tid: tid, address: a, size: size, pcs: f.count - 5))
      } else if f.first == "f" {
        guard f.count >= 3, let tid = Int(f[1]), let a = hex(f[2]) else { Issue.record("malformed free line: \(line)"); continue }
        out.append(Event(alloc: false, tid: tid, address: a, size: 0, pcs: f.count - 3))
      } else {
        Issue.record("unknown trace line: \(line)")
      }
    }
    return (out, maps)
  }

  /// The live set at the end: frees of unknown addresses are ignored, an allocation at a live
  /// address replaces the old object (the rules `trace summarize` and `trace replay` follow).
  static func liveSet(_ events: [Event]) -> [UInt: Int] {
    var live: [UInt: Int] = [:]
    for e in events {
      if e.alloc { live[e.address] = e.size } else { live[e.address] = nil }
    }
    return live
  }

  /// Records traced.c through `goalloc trace record`; returns the trace text and the program's report.
  static func record(stacks: Bool) async throws -> (trace: String, path: URL, report: ProgramReport) {
    let cli = try Paths.requireCLI()
    let exe = try await FixtureBuilder.shared.executable("traced.c")
    let dir = try Paths.freshDirectory("trace")
    let file = dir.appendingPathComponent("traced.trace")
    let r = try await Subprocess.run(
      cli.path, ["trace", "record", "-o", file.path] + (stacks ? ["--stacks"] : []) + ["--", exe.path], timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stderrLines.count == 1 && r.stderr.contains("allocations"), "one summary line on stderr\n\(r)")
    let text = try String(contentsOf: file, encoding: .utf8)
    return (text, file, try programReport(r.stdout))
  }

  // MARK: tests

  @Test("the trace holds exactly the program's allocations and frees, in order")
  func traceHasTheProgramsEvents() async throws {
    let (trace, _, report) = try await Self.record(stacks: false)
    let (events, maps) = try Self.events(trace)
    #expect(maps == 0, "no # map lines without --stacks")
    #expect(events.allSatisfy { $0.pcs == 0 }, "no return addresses without --stacks")

    let distinctive = Set(Self.sizes)
    let allocs = events.filter { $0.alloc && distinctive.contains($0.size) }
    #expect(allocs.map(\.size) == Self.sizes, "allocation events of the distinctive sizes, in order")
    #expect(allocs.map(\.address) == report.addresses, "the addresses the program got")
    if allocs.count == Self.sizes.count {
      let main = allocs[0].tid
      for (i, e) in allocs.enumerated() {
        if i == Self.threadObject { #expect(e.tid != main, "object \(i) was allocated by the second thread") }
        else { #expect(e.tid == main, "object \(i) was allocated by the main thread") }
      }
    }

    // Frees of our objects: follow each address while it holds our object.
    var ours: [UInt: Int] = [:]
    var frees: [Int] = []
    for e in events {
      if e.alloc {
        if let i = Self.sizes.firstIndex(of: e.size), report.addresses.indices.contains(i), report.addresses[i] == e.address {
          ours[e.address] = i
        } else {
          ours[e.address] = nil
        }
      } else if let i = ours.removeValue(forKey: e.address) {
        frees.append(i)
      }
    }
    #expect(frees == Self.freedOrder, "free events of our objects, in order")
    #expect(report.frees.map(\.index) == Self.freedOrder)

    // The distinctive part of the trace's live set is the program's own.
    let live = Self.liveSet(events).filter { a, size in distinctive.contains(size) && report.addresses.contains(a) }
    #expect(live.count == report.liveCount && live.values.reduce(0, +) == report.liveBytes,
            "trace: \(live.count) objects, \(live.values.reduce(0, +)) bytes; program: \(report.liveCount), \(report.liveBytes)")
    #expect(report.liveCount == Self.sizes.count - Self.freedOrder.count)
  }

  @Test("trace replay ends with the trace's live set under every allocator")
  func replayReproducesTheLiveSet() async throws {
    let cli = try Paths.requireCLI()
    _ = try Paths.requireTool("cc")
    let (trace, file, report) = try await Self.record(stacks: false)
    let (events, _) = try Self.events(trace)
    let live = Self.liveSet(events)
    let liveBytes = live.values.reduce(0, +)
    #expect(live.count >= report.liveCount && liveBytes >= report.liveBytes)

    let r = try await Subprocess.run(cli.path, ["trace", "replay", file.path, "--runs", "1"], timeout: 180)
    #expect(r.exitedCleanly, "\(r)")
    // Table rows: name, time, ns/op, peak RSS, RSS growth, live objects, live bytes.
    var rows: [String: (Int, Int)] = [:]
    for line in r.stdoutLines {
      let f = line.split(separator: " ")
      guard let name = f.first, ["glibc", "goalloc", "jemalloc", "tcmalloc", "mimalloc"].contains(String(name)),
            f.count >= 7, let objs = Int(f[f.count - 2]), let bytes = Int(f[f.count - 1]) else { continue }
      rows[String(name)] = (objs, bytes)
    }
    #expect(rows["glibc"] != nil && rows["goalloc"] != nil, "rows for glibc and goalloc at least\n\(r)")
    for (name, v) in rows {
      #expect(v.0 == live.count && v.1 == liveBytes,
              "\(name) ended with \(v.0) objects / \(v.1) bytes; the trace's live set is \(live.count) / \(liveBytes)\n\(r)")
    }
    #expect(r.stdout.contains("trace live set at the end: \(live.count) objects, \(liveBytes) bytes: every replay ended with it"), "\(r)")
    let allocs = events.filter(\.alloc).count
    #expect(r.stdout.contains("(\(allocs) mallocs,"), "\(r)")
  }

  @Test("trace summarize: counts, classes, large objects, live set and symbolized call sites")
  func summarizeWithStacks() async throws {
    let cli = try Paths.requireCLI()
    let (trace, file, _) = try await Self.record(stacks: true)
    let (events, maps) = try Self.events(trace)
    #expect(maps > 0, "--stacks adds the # map lines")
    let ours = events.filter { $0.alloc && Self.sizes.contains($0.size) }
    #expect(ours.count == Self.sizes.count && ours.allSatisfy { $0.pcs > 0 }, "our allocations carry return addresses")

    let r = try await Subprocess.run(cli.path, ["trace", "summarize", file.path], timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    let out = r.stdout
    let allocs = events.filter(\.alloc).count, frees = events.count - allocs
    let live = Self.liveSet(events)
    let threads = Set(events.map(\.tid)).count
    #expect(threads >= 2)
    func line(_ label: String) -> String { r.stdoutLines.first { $0.hasPrefix("  " + label + " ") } ?? "" }
    #expect(line("events").contains(" \(events.count) (\(allocs) allocations, \(frees) frees) from \(threads) threads"), "\(r)")
    #expect(line("live at the end").contains(" \(live.count) objects") && line("live at the end").contains("(\(live.values.reduce(0, +)) B)"), "\(r)")
    #expect(line("lifetime (events)").contains(" p50 "), "\(r)")
    #expect(out.contains("allocations by size class") && out.contains("64 KiB to 128 KiB"), "\(r)")
    #expect(out.contains("hot call sites"), "\(r)")
    if Paths.which("addr2line") != nil {
      #expect(out.contains("main (traced.c:"), "main's allocations are named by addr2line\n\(r)")
      #expect(out.contains("thread_alloc (traced.c:"), "\(r)")
    }
    let plain = try await Subprocess.run(cli.path, ["trace", "summarize", "--no-symbols", file.path], timeout: 60)
    #expect(plain.exitedCleanly && plain.stdout.contains("traced+0x"), "module+offset without addr2line\n\(plain)")
  }

  @Test("run --heapmap draws the program's heap: one SVG element per span")
  func runHeapMap() async throws {
    let cli = try Paths.requireCLI()
    let exe = try await FixtureBuilder.shared.executable("traced.c")
    let dir = try Paths.freshDirectory("heapmap")
    let svg = dir.appendingPathComponent("traced.svg"), text = dir.appendingPathComponent("traced.heapmap")
    let r = try await Subprocess.run(
      cli.path, ["run", "--heapmap", svg.path, "--heapmap-text", text.path, "--", exe.path, "exit=3"], timeout: 60)
    #expect(!r.timedOut && r.reason == .exit && r.status == 3, "the program's exit status comes through\n\(r)")
    #expect(r.stdout.contains("live 7 188005"), "\(r)")
    let map = try String(contentsOf: text, encoding: .utf8)
    #expect(map.hasPrefix("# goalloc heapmap v1\n"))
    let spanLines = map.split(separator: "\n").filter { $0.hasPrefix("span ") }
    #expect(!spanLines.isEmpty)
    // The live 123457-byte object is a large span.
    #expect(spanLines.contains { l in
      let f = l.split(separator: " ")
      return f.count == 8 && f[7] == "large" && (Int(f[2]) ?? 0) * 8192 >= 123_457
    }, "\(map)")

    let data = try Data(contentsOf: svg)
    let counter = ElementCounter()
    let parser = XMLParser(data: data)
    parser.delegate = counter
    #expect(parser.parse(), "the SVG is well-formed XML: \(String(describing: parser.parserError))")
    #expect(counter.rootName == "svg")
    #expect(counter.byClass["span"] == spanLines.count, "one <path class=\"span\"> per span line")
    #expect(String(decoding: data, as: UTF8.self).contains("GoAlloc heap map"))
  }

  @Test("run --heapmap of python3 (Fixtures/cache.py): a fragmented heap of many size classes")
  func pythonHeapMap() async throws {
    let cli = try Paths.requireCLI()
    let python = try Paths.requireTool("python3")
    let script = try Paths.fixture("cache.py")
    let dir = try Paths.freshDirectory("pyheapmap")
    let svg = dir.appendingPathComponent("cache.svg"), text = dir.appendingPathComponent("cache.heapmap")
    let r = try await Subprocess.run(
      cli.path, ["run", "--heapmap", svg.path, "--heapmap-text", text.path, "--", python, script.path], timeout: 120)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.count == 1 && r.stdoutLines.first?.split(separator: " ").count == 2, "\(r)")
    #expect(r.stderrLines.contains { $0.hasPrefix("goalloc run: heap map of") }, "\(r)")
    let map = try String(contentsOf: text, encoding: .utf8)
    let spanLines = map.split(separator: "\n").filter { $0.hasPrefix("span ") }
    let counter = ElementCounter()
    let parser = XMLParser(data: try Data(contentsOf: svg))
    parser.delegate = counter
    #expect(parser.parse(), "the SVG is well-formed XML: \(String(describing: parser.parserError))")
    #expect(counter.byClass["span"] == spanLines.count)
    #expect(spanLines.count > 100, "cache.py keeps thousands of objects live")
    #expect(counter.sizeClasses.count >= 10, "spans of many size classes: \(counter.sizeClasses.sorted())")
    #expect((counter.byClass["free"] ?? 0) + (counter.byClass["released"] ?? 0) > 0, "free pages between the spans")
  }

  @Test("stats prints a table with Mallocs; --json passes the program's output and status through")
  func statsCommand() async throws {
    let cli = try Paths.requireCLI()
    let t = try await Subprocess.run(cli.path, ["stats", "--", "/bin/true"], timeout: 30)
    #expect(t.exitedCleanly, "\(t)")
    #expect(t.stdoutLines.contains { l in
      let f = l.split(separator: " ")
      return f.count >= 2 && f[0] == "Mallocs" && UInt64(f[1]) != nil
    }, "a Mallocs row\n\(t)")
    #expect(t.stdoutLines.contains { $0.split(separator: " ").first == "HeapInuse" }, "\(t)")

    let exe = try await FixtureBuilder.shared.executable("traced.c")
    let j = try await Subprocess.run(cli.path, ["stats", "--json", "--", exe.path, "exit=5"], timeout: 30)
    #expect(!j.timedOut && j.reason == .exit && j.status == 5, "\(j)")
    #expect(j.stdoutLines.contains("live 7 188005"), "the program's own output comes through\n\(j)")
    #expect(!j.stderr.contains("goalloc: Mallocs"), "the stats lines are taken out of stderr\n\(j)")
    let last = try #require(j.stdoutLines.last)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(j)")
    #expect(object["exit_status"] as? Int == 5)
    let stats = try #require(object["stats"] as? [String: Any], "\(j)")
    let mallocs = try #require(stats["Mallocs"] as? Int)
    let frees = try #require(stats["Frees"] as? Int)
    #expect(mallocs >= Self.sizes.count && frees >= Self.freedOrder.count, "\(last)")
    #expect(stats["HeapObjects"] as? Int == mallocs - frees)
    #expect(stats["LargeAllocs"] as? Int ?? 0 >= 2, "70001 and 123457 are large\n\(last)")
  }

  /// traced.c run with every allocation sampled; the raw heap profile it leaves at exit.
  static func tracedProfile() async throws -> (file: URL, exe: URL) {
    let exe = try await FixtureBuilder.shared.executable("traced.c")
    let dir = try Paths.freshDirectory("memprofile")
    let file = dir.appendingPathComponent("traced.prof")
    let r = try await Subprocess.run(exe.path, preload: .goalloc(debug: "memprofile=\(file.path),memprofilerate=1"), timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    return (file, exe)
  }

  @Test("a memprofile run writes the raw profile; `goalloc profile folded` turns it into folded stacks")
  func heapProfile() async throws {
    let (file, exe) = try await Self.tracedProfile()
    let raw = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
    #expect(raw.first == "# goalloc heapprofile v1" && raw.contains("# rate 1"), "\(raw.prefix(3))")
    let samples = raw.filter { $0.hasPrefix("s ") }
    #expect(samples.count >= 7, "every live object is sampled at rate 1\n\(raw.joined(separator: "\n"))")
    #expect(raw.contains { $0.hasPrefix("# map ") && $0.hasSuffix(exe.path) }, "the program's mapping is listed")
    for size in [2223, 123457] {  // live objects of traced.c, each with its caller's stack
      #expect(samples.contains { $0.split(separator: " ").count >= 4 && $0.split(separator: " ")[1] == "\(size)" }, "\(size)")
    }

    let cli = try Paths.requireCLI()
    let f = try await Subprocess.run(cli.path, ["profile", "folded", file.path], timeout: 60)
    #expect(f.exitedCleanly, "\(f)")
    var total = 0
    for l in f.stdoutLines {
      guard let sp = l.lastIndex(of: " "), let v = Int(l[l.index(after: sp)...]), v > 0, sp > l.startIndex else {
        Issue.record("not `stack;frames <number>`: \(l)")
        continue
      }
      total += v
    }
    #expect(total >= 188_005, "the profile accounts for at least the program's live bytes (\(total))")
    #expect(f.stdoutLines.contains { $0.contains(";main (traced.c:") }, "named frames down to main\n\(f)")

    let svg = file.deletingLastPathComponent().appendingPathComponent("flame.svg")
    let g = try await Subprocess.run(cli.path, ["profile", "flamegraph", file.path, "-o", svg.path], timeout: 60)
    #expect(g.exitedCleanly, "\(g)")
    let text = try String(contentsOf: svg, encoding: .utf8)
    #expect(text.hasPrefix("<?xml") && text.contains("<svg") && text.contains("class=\"frame\"") && text.contains(">main"), "\(text.prefix(600))")
  }

  @Test("`goalloc profile pprof` writes a gzipped profile.proto that `go tool pprof -top` reads",
        .enabled(if: Paths.which("go") != nil, "go is not installed (Scripts/test.sh installs golang-go as root)"))
  func pprofProfile() async throws {
    let (file, _) = try await Self.tracedProfile()
    let cli = try Paths.requireCLI()
    let out = file.deletingLastPathComponent().appendingPathComponent("heap.pb.gz")
    let p = try await Subprocess.run(cli.path, ["profile", "pprof", file.path, "-o", out.path], timeout: 60)
    #expect(p.exitedCleanly, "\(p)")
    let go = try Paths.requireTool("go")
    let home = file.deletingLastPathComponent().path  // go wants a writable cache and home
    let r = try await Subprocess.run(go, ["tool", "pprof", "-top", out.path],
                                     environment: ["HOME": home, "GOCACHE": home + "/gocache", "GOFLAGS": "-mod=mod"],
                                     timeout: 120)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdout.contains("Type: inuse_space"), "\(r)")
    #expect(r.stdoutLines.contains { $0.contains("main") }, "main among the functions\n\(r)")
    // 188005 live bytes of traced.c and libc's own: pprof's total is at least that.
    let total = r.stdoutLines.first { $0.contains("% of ") && $0.hasSuffix("total") }
    #expect(total != nil, "\(r)")
  }

  @Test("bad arguments: one line on stderr and a non-zero status")
  func badArguments() async throws {
    let cli = try Paths.requireCLI()
    let cases: [[String]] = [
      ["trace"], ["trace", "record", "--", "/bin/true"], ["trace", "summarize", "/nonexistent/trace"],
      ["trace", "replay", "/nonexistent/trace", "--runs", "0"], ["trace", "replay", "x", "--allocator", "nope"],
      ["stats"], ["stats", "--bogus", "--", "/bin/true"], ["heapmap", "/nonexistent/map"],
      ["run", "--heapmap-text", "x", "--", "/bin/true"],
    ]
    for args in cases {
      let r = try await Subprocess.run(cli.path, args, timeout: 30)
      #expect(!r.timedOut && r.reason == .exit && r.status != 0, "\(r)")
      #expect(r.stderrLines.count == 1 && r.stdout.isEmpty, "exactly one error line\n\(r)")
    }
  }
}

/// Counts an XML document's elements by their class attribute.
final class ElementCounter: NSObject, XMLParserDelegate {
  var byClass: [String: Int] = [:]
  var sizeClasses: Set<String> = []
  var rootName: String?

  func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
              qualifiedName qName: String?, attributes: [String: String] = [:]) {
    if rootName == nil { rootName = elementName }
    if let c = attributes["class"] { byClass[c, default: 0] += 1 }
    if attributes["class"] == "span", let k = attributes["data-class"] { sizeClasses.insert(k) }
  }
}
