// goalloc-cli: `preload-path` and `run [--stats] -- CMD ARGS...`.
import Foundation
import Testing

@Suite("goalloc-cli")
struct CLITests {
  @Test("preload-path prints the absolute path of an existing libgoalloc.so")
  func preloadPath() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["preload-path"], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.count == 1 && r.stderrLines.isEmpty, "\(r)")
    let path = try #require(r.stdoutLines.first)
    #expect(path.hasPrefix("/") && path.hasSuffix("/libgoalloc.so"), "\(r)")
    #expect(FileManager.default.isReadableFile(atPath: path), "\(path) does not exist")
    // It is the library built next to the CLI (the first place it looks).
    #expect(URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            == Paths.library.resolvingSymlinksInPath().path, "\(r)")
  }

  @Test("run --stats -- /bin/echo hi")
  func runEcho() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["run", "--stats", "--", "/bin/echo", "hi"], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdout == "hi\n", "\(r)")
    // coreutils close stderr at exit (close_stdout), before the library's destructor prints the
    // stats: the library writes them to its own duplicate of fd 2, taken at load time.
    #expect(r.stderr.contains("goalloc: Mallocs "), "\(r)")
  }

  @Test("run --stats -- a C program: its output, its stats")
  func runProgram() async throws {
    let cli = try Paths.requireCLI()
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    let r = try await Subprocess.run(cli.path, ["run", "--stats", "--", hello.path], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    let sum = (1...1000).reduce(0) { $0 + ($1 & 0xff) }
    #expect(r.stdoutLines == ["hello from gcc", "sum \(sum)"], "\(r)")
    #expect(r.stderr.contains("goalloc: Mallocs "), "\(r)")
    expectServedByGoAlloc(r, blocks: 1...1)
  }

  @Test("run appends stats=1 to the user's GOALLOC_DEBUG and passes the exit status through")
  func runEnvironmentAndStatus() async throws {
    let cli = try Paths.requireCLI()
    let sh = "/bin/sh"
    let r = try await Subprocess.run(
      cli.path, ["run", "--stats", "--", sh, "-c", "printf '%s|%s\\n' \"$LD_PRELOAD\" \"$GOALLOC_DEBUG\"; exit 7"],
      environment: ["GOALLOC_DEBUG": "badfree=warn"], timeout: 30)
    #expect(!r.timedOut && r.reason == .exit && r.status == 7, "\(r)")
    #expect(r.stdoutLines == ["\(Paths.library.path)|badfree=warn,stats=1"], "\(r)")
  }

  @Test("run --gctrace appends gctrace=1 to GOALLOC_DEBUG")
  func runGCTrace() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(
      cli.path, ["run", "--gctrace", "--", "/bin/sh", "-c", "printf '%s\\n' \"$GOALLOC_DEBUG\""],
      environment: ["GOALLOC_DEBUG": "check=0"], timeout: 30)
    #expect(r.exitedCleanly && r.stdoutLines == ["check=0,gctrace=1"], "\(r)")
  }

  @Test("run without a command fails with one error line")
  func runWithoutCommand() async throws {
    let cli = try Paths.requireCLI()
    for args in [["run"], ["run", "--stats"], ["run", "--stats", "--"]] {
      let r = try await Subprocess.run(cli.path, args, timeout: 30)
      #expect(!r.timedOut && r.reason == .exit && r.status != 0, "\(r)")
      #expect(r.stdout.isEmpty, "\(r)")
      #expect(r.stderrLines.count == 1, "exactly one error line\n\(r)")
    }
  }

  @Test("run of a missing program exits 127 with one error line")
  func runMissingProgram() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["run", "--", "/nonexistent/goalloc-no-such-program"], timeout: 30)
    #expect(!r.timedOut && r.reason == .exit && r.status == 127, "\(r)")
    #expect(r.stderrLines.count == 1 && r.stderr.contains("/nonexistent/goalloc-no-such-program"), "\(r)")
  }

  // MARK: messages and exit codes

  @Test("every usage error: one line on stderr, exit status 64")
  func usageErrorsExit64() async throws {
    let cli = try Paths.requireCLI()
    let cases: [[String]] = [
      ["run"], ["run", "--stats", "--"], ["stats"], ["compare"], ["trace"], ["trace", "record", "-o", "t"],
      ["bogus"], ["run", "--bogus", "--", "/bin/true"], ["bench", "--runs", "0"], ["bench", "--out", "/tmp/a b"], ["heapmap"],
      ["sizeclasses", "--csv", "--emit-c"], ["heapmap", "x", "--columns", "abc"], ["compare", "--allocator", "nope", "--", "/bin/true"],
    ]
    for args in cases {
      let r = try await Subprocess.run(cli.path, args, timeout: 30)
      #expect(!r.timedOut && r.reason == .exit && r.status == 64, "\(args)\n\(r)")
      #expect(r.stderrLines.count == 1 && r.stdout.isEmpty, "exactly one error line\n\(r)")
    }
  }

  @Test("a negative number gets a clear message")
  func negativeNumbers() async throws {
    let cli = try Paths.requireCLI()
    for args in [["bench", "--runs", "-1"], ["trace", "replay", "t", "--runs", "-2"], ["heapmap", "m", "--columns", "-5"],
                 ["compare", "--runs", "-3", "--", "/bin/true"], ["trace", "summarize", "t", "--top", "-1"]] {
      let r = try await Subprocess.run(cli.path, args, timeout: 30)
      #expect(r.status == 64 && r.stderrLines.count == 1, "\(r)")
      let option = args[args.count - 2 - (args.last == "/bin/true" ? 2 : 0)]
      #expect(r.stderr.contains("\(option) -") && r.stderr.contains("negative numbers are not accepted"), "\(r)")
      #expect(!r.stderr.contains("Missing value"), "\(r)")
    }
  }

  @Test("a command's own flags without `--` before them: the message suggests `--`")
  func suggestsDoubleDash() async throws {
    let cli = try Paths.requireCLI()
    let cases: [([String], String)] = [
      (["run", "ls", "-l"], "goalloc run -- ls -l"),
      (["run", "--stats", "ls", "-l"], "goalloc run --stats -- ls -l"),
      (["stats", "ls", "-la"], "goalloc stats -- ls -la"),
      (["trace", "record", "-o", "t.trace", "ls", "-l"], "goalloc trace record -o t.trace -- ls -l"),
      (["compare", "python3", "-c", "pass"], "goalloc compare -- python3 -c pass"),
    ]
    for (args, suggestion) in cases {
      let r = try await Subprocess.run(cli.path, args, timeout: 30)
      #expect(r.status == 64 && r.stderrLines.count == 1, "\(r)")
      #expect(r.stderr.contains("put `--` before the command") && r.stderr.contains(suggestion), "\(r)")
    }
  }

  @Test("heap-map parse errors name the line")
  func heapMapLineNumbers() async throws {
    let cli = try Paths.requireCLI()
    let dir = try Paths.freshDirectory("badmap")
    let map = dir.appendingPathComponent("map.txt")
    try "# goalloc heapmap v1\narena 0xc000000000 67108864\nspan 0xc000000000 1 banana\n"
      .write(to: map, atomically: true, encoding: .utf8)
    let r = try await Subprocess.run(cli.path, ["heapmap", map.path], timeout: 30)
    #expect(r.status == 1 && r.stderrLines.count == 1, "\(r)")
    #expect(r.stderr.contains("\(map.path): line 3: "), "\(r)")
  }

  @Test("--version names the version and the library's build")
  func version() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["--version"], timeout: 30)
    #expect(r.exitedCleanly && r.stdoutLines.count == 2, "\(r)")
    #expect(r.stdoutLines.first?.hasPrefix("goalloc ") == true, "\(r)")
    #expect(r.stdoutLines.last?.hasPrefix("library: \(Paths.library.path), build-id ") == true, "\(r)")
  }

  // MARK: compare and the bench chart

  @Test("compare: a table of allocators, GoAlloc's MemStats of the command's own process, a heap map")
  func compare() async throws {
    let cli = try Paths.requireCLI()
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    let dir = try Paths.freshDirectory("compare")
    let svg = dir.appendingPathComponent("heap.svg")
    let r = try await Subprocess.run(cli.path, ["compare", "--runs", "2", "--allocator", "glibc", "--allocator", "goalloc",
                                                "--heapmap", svg.path, "--", hello.path], timeout: 120)
    #expect(r.exitedCleanly, "\(r)")
    let out = r.stdoutLines
    #expect(out.first == "\(hello.lastPathComponent): median of 2 runs under each allocator", "\(r)")
    #expect(out.contains { $0.hasPrefix("  glibc ") && $0.contains(" s ") && $0.contains("1.00x") }, "\(r)")
    #expect(out.contains { $0.hasPrefix("  goalloc ") && $0.contains("x") }, "\(r)")
    #expect(out.contains { $0.hasPrefix("GoAlloc's MemStats at the exit of pid ") && $0.contains("(\(hello.lastPathComponent))") }, "\(r)")
    #expect(out.contains { $0.hasPrefix("  operations ") && $0.contains("mallocs") }, "\(r)")
    #expect(out.contains { $0.hasPrefix("Output") && $0.contains("the same under every allocator") }, "\(r)")
    #expect(out.contains { $0.hasPrefix("Heap map") && $0.hasSuffix(svg.path) }, "\(r)")
    #expect(FileManager.default.fileExists(atPath: svg.path))
    #expect(!r.stderr.contains("goalloc: Mallocs"), "no raw stats\n\(r)")
  }

  @Test("bench chart: value labels overlap neither each other nor other bars")
  func benchChartLabels() async throws {
    let cli = try Paths.requireCLI()
    let dir = try Paths.freshDirectory("bench")
    let r = try await Subprocess.run(cli.path, ["bench", "--quick", "--runs", "1", "--no-go", "--workload", "pair",
                                                "--workload", "large", "--allocator", "glibc", "--allocator", "goalloc",
                                                "--source", Paths.packageRoot.path, "--out", dir.path], timeout: 300)
    #expect(r.exitedCleanly, "\(r)")
    let svg = try String(contentsOf: dir.appendingPathComponent("results.svg"), encoding: .utf8)
    let chart = ChartGeometry(svg)
    #expect(chart.labels.count >= 2, "a value label per GoAlloc bar\n\(svg)")
    for (i, a) in chart.labels.enumerated() {
      for b in chart.labels[(i + 1)...] { #expect(!a.box.overlaps(b.box), "labels \(a.text) and \(b.text) overlap") }
      for bar in chart.bars where !bar.contains(a.box) {
        #expect(!a.box.overlaps(bar), "label \(a.text) overlaps a bar it does not belong to")
      }
    }
    let width = try #require(chart.width)
    #expect(width >= 800, "room for the title and the legend: \(width)")
  }

  @Test("bench gc --quick: the -lgc workloads under bdwgc (incremental too) and GoAlloc's collector (barrier builds too), their explicit-free builds under malloc peers, Go's mirror; one table each, p99 pauses")
  func benchGCQuick() async throws {
    guard FileManager.default.fileExists(atPath: "/usr/include/gc.h") else { return }  // (test.sh installs libgc-dev)
    let cli = try Paths.requireCLI()
    let dir = try Paths.freshDirectory("bench-gc")
    let hasGo = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":")
      .contains { FileManager.default.isExecutableFile(atPath: "\($0)/go") } ?? false
    let r = try await Subprocess.run(cli.path, ["bench", "gc", "--quick", "--runs", "1", "--workload", "binarytrees",
                                                "--workload", "gcheap", "--workload", "gc17", "--workload", "gcbig",
                                                "--allocator", "bdwgc", "--allocator", "bdwgc-inc",
                                                "--allocator", "goalloc", "--allocator", "goalloc-objq", "--allocator", "goalloc-wb", "--allocator", "glibc",
                                                "--allocator", "goalloc-free", "--allocator", "go",
                                                "--source", Paths.packageRoot.path, "--out", dir.path], timeout: 400)
    #expect(r.exitedCleanly, "\(r)")
    let md = try String(contentsOf: dir.appendingPathComponent("results.md"), encoding: .utf8)
    #expect(md.contains("## binarytrees 14") && md.contains("## gcheap 20") && md.contains("## gc17 5000000 10000")
            && md.contains("## gcbig 40 200"), "\(md)")
    #expect(md.components(separatedBy: "Result line identical under every collector").count == 5, "\(md)")
    #expect(md.components(separatedBy: "| max pause ms | p99 pause ms | total pause ms | max stall ms |").count == 5, "\(md)")
    func rows(_ c: String) -> Int { md.split(separator: "\n").filter { $0.hasPrefix("| \(c) | ") && !$0.contains("failed") }.count }
    // bdwgc-inc's rows fail unless its gcstats line says bdwgc's incremental mode was on.
    // goalloc-wb: the barrier builds (GC_STORE through GC_PTR_STORE_AND_DIRTY) with gcdirty=barrier.
    for c in ["bdwgc", "bdwgc-inc", "goalloc", "goalloc-objq", "goalloc-wb"] { #expect(rows(c) == 4, "\(c)\n\(md)") }
    // gcheap has no explicit-free build and no Go mirror.
    for c in ["glibc", "goalloc-free"] + (hasGo ? ["go"] : []) { #expect(rows(c) == 3, "\(c)\n\(md)") }
    #expect(md.contains("ns per object") && md.contains("goalloc "), "\(md)")
    let tsv = try String(contentsOf: dir.appendingPathComponent("results.tsv"), encoding: .utf8)
    #expect(tsv.hasPrefix("workload\tcollector\tround\twall_s\tcpu_s\tmaxrss_kib\tcollections\tpause_max_ms\tpause_p99_ms\tpause_total_ms\tstall_max_ms\tstatus\n"), "\(tsv)")
    // A p99 pause is at most the max.
    for line in tsv.split(separator: "\n").dropFirst() {
      let f = line.split(separator: "\t").map(String.init)
      #expect(f.count == 12 && (Double(f[8]) ?? .infinity) <= (Double(f[7]) ?? 0), "\(line)")
      // A stall is GoAlloc's concurrent mode's (goalloc-wb here); every other row reports none.
      #expect(f[1] == "goalloc-wb" || f[10] == "0.000", "\(line)")
    }
    let bad = try await Subprocess.run(cli.path, ["bench", "gc", "--allocator", "hoard"], timeout: 30)
    #expect(bad.status == 64 && bad.stderr.contains("unknown collector hoard") && bad.stderr.contains("bdwgc-inc"), "\(bad)")
    let badWorkload = try await Subprocess.run(cli.path, ["bench", "gc", "--workload", "gc99"], timeout: 30)
    #expect(badWorkload.status == 64 && badWorkload.stderr.contains("binarytrees20") && badWorkload.stderr.contains("gcbig"),
            "\(badWorkload)")
  }
}

/// The boxes of an SVG bench chart: bars (rects with a <title>) and vertical value labels.
struct ChartGeometry {
  struct Box { var x0, y0, x1, y1: Double
    func overlaps(_ o: Box) -> Bool { x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1 }
  }
  var bars: [Box] = []
  var labels: [(text: String, box: Box)] = []
  var width: Double?

  init(_ svg: String) {
    func attr(_ line: Substring, _ name: String) -> String? {
      guard let r = line.range(of: " \(name)=\"") else { return nil }
      return String(line[r.upperBound...].prefix { $0 != "\"" })
    }
    for line in svg.split(separator: "\n") {
      if line.hasPrefix("<svg"), let w = attr(line, "width").flatMap(Double.init) { width = w }
      if line.hasPrefix("<rect"), line.contains("<title>"),
         let x = attr(line, "x").flatMap(Double.init), let y = attr(line, "y").flatMap(Double.init),
         let w = attr(line, "width").flatMap(Double.init), let h = attr(line, "height").flatMap(Double.init) {
        bars.append(Box(x0: x, y0: y, x1: x + w, y1: y + h))
      }
      // <text transform="translate(X,Y) rotate(-90)" text-anchor="start|end" font-size="9" ...>T</text>
      if line.hasPrefix("<text transform=\"translate("), line.contains("rotate(-90)"),
         let t = attr(line, "transform"), let anchor = attr(line, "text-anchor") {
        let nums = t.dropFirst("translate(".count).prefix { $0 != ")" }.split(separator: ",").compactMap { Double($0) }
        guard nums.count == 2, let gt = line.lastIndex(of: ">"), let open = line[..<gt].lastIndex(of: "<"),
              let start = line[..<open].lastIndex(of: ">") else { continue }
        let text = String(line[line.index(after: start)..<open])
        let length = Double(text.count) * 5.6   // DejaVu Sans at 9 px, about 5.4 px a digit
        let (x, y) = (nums[0], nums[1])
        let box = anchor == "end" ? Box(x0: x - 7, y0: y, x1: x, y1: y + length) : Box(x0: x - 7, y0: y - length, x1: x, y1: y)
        labels.append((text, box))
      }
    }
  }
}

extension ChartGeometry.Box {
  /// Whether `inner` lies inside this box (a label written inside its own bar).
  func contains(_ inner: ChartGeometry.Box) -> Bool {
    inner.x0 >= x0 - 1 && inner.x1 <= x1 + 1 && inner.y0 >= y0 - 1 && inner.y1 <= y1 + 1
  }
}
