// Stats that say whose they are: every exit-stats block is headed by the process's pid and command
// line and written whole (blocks of processes exiting together do not interleave); Sys is memory
// obtained, SysReserved the address space; GC fields stay out until a GC has run; `goalloc run
// --stats` and `goalloc stats --all` label each process; `goalloc stats` explains a child killed
// by a signal.
import Foundation
import Testing

@Suite("labelled stats")
struct LabelledStatsTests {
  static let fieldOrder = ["Alloc", "TotalAlloc", "Sys", "SysReserved", "Mallocs", "Frees", "HeapAlloc", "HeapSys",
                           "HeapIdle", "HeapInuse", "HeapReleased", "HeapObjects", "MSpanInuse", "MSpanSys",
                           "MCacheInuse", "MCacheSys", "OtherSys", "LargeAllocs", "LargeFrees", "TinyAllocs",
                           "BadFrees", "ThreadCaches", "SpansInUse", "RoundingWaste"]

  @Test("a stats block: heading with pid and command line, every field once, no GC fields, Sys within SysReserved")
  func block() async throws {
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    let r = try await Subprocess.run(hello.path, ["one", "two"], preload: .goallocStats, timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    let lines = r.stderrLines
    #expect(lines.count == 1 + Self.fieldOrder.count, "\(r)")
    let heading = try #require(lines.first.flatMap(Stats.parseHeading), "\(r)")
    #expect(lines.first?.hasSuffix(" at exit") == true, "\(r)")
    #expect(heading.command == "\(hello.lastPathComponent) one two", "\(r)")
    #expect(heading.pid > 0, "\(r)")
    #expect(lines.dropFirst().compactMap { Stats.parseLine($0)?.0 } == Self.fieldOrder, "\(r)")
    let b = try #require(Stats.blocks(r.stderr).first)
    for gc in ["NextGC", "NumGC", "PauseTotalNs"] { #expect(b[gc] == nil, "\(gc) before any GC\n\(r)") }
    let sys = try #require(b["Sys"]), reserved = try #require(b["SysReserved"])
    let heapSys = try #require(b["HeapSys"]), released = try #require(b["HeapReleased"])
    #expect(sys < reserved, "\(r)")
    #expect(reserved >= heapSys, "\(r)")
    #expect(sys >= heapSys - released, "the heap pages obtained are in Sys\n\(r)")
    // hello touches a few pages: Sys is memory (a few MiB), not the address space it reserves.
    #expect(sys < 16 << 20, "Sys \(sys), HeapSys \(heapSys)\n\(r)")
  }

  @Test("blocks of processes exiting at the same moment stay whole, each labelled")
  func concurrentBlocksStayWhole() async throws {
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    // xargs, not the shell's `wait` (dash's waits for a SIGCHLD that the test process blocks).
    let script = "seq 16 | xargs -P 16 -n 1 \"$0\" >/dev/null"
    let r = try await Subprocess.run("/bin/sh", ["-c", script, hello.path], preload: .goallocStats, timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    let lines = r.stderrLines
    var i = 0, blocks = 0
    var pids: Set<Int32> = []
    var named = 0
    while i < lines.count {
      guard let h = Stats.parseHeading(lines[i]) else {
        Issue.record("line \(i) is not a heading: \(lines[i])\n\(r)")
        break
      }
      pids.insert(h.pid)
      if h.command.hasPrefix(hello.lastPathComponent + " ") { named += 1 }
      let fields = lines[(i + 1)...].prefix(Self.fieldOrder.count).compactMap { Stats.parseLine($0)?.0 }
      #expect(fields == Self.fieldOrder, "block \(blocks) is interleaved\n\(r)")
      i += 1 + Self.fieldOrder.count
      blocks += 1
    }
    #expect(named == 16 && pids.count == blocks, "16 hello processes, each its own block\n\(r)")
  }

  @Test("goalloc run --stats labels the process")
  func runStats() async throws {
    let cli = try Paths.requireCLI()
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    let r = try await Subprocess.run(cli.path, ["run", "--stats", "--", hello.path], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    let h = Stats.headings(r.stderr)
    #expect(h.count == 1 && h.first?.command == hello.lastPathComponent, "\(r)")
  }

  @Test("goalloc stats names the process; --all labels each; --json carries pid and process")
  func statsCommand() async throws {
    let cli = try Paths.requireCLI()
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    let one = try await Subprocess.run(cli.path, ["stats", "--", hello.path], timeout: 30)
    #expect(one.exitedCleanly, "\(one)")
    #expect(one.stdoutLines.contains { $0.hasPrefix("GoAlloc statistics of pid ") && $0.contains("(\(hello.lastPathComponent)), exit status 0") },
            "\(one)")
    #expect(!one.stdoutLines.contains { $0.hasPrefix("  NumGC") || $0.hasPrefix("  NextGC") }, "no GC rows\n\(one)")
    #expect(one.stdoutLines.contains { $0.hasPrefix("  SysReserved ") }, "\(one)")

    let script = "\"$0\" >/dev/null; \"$0\" >/dev/null"
    let all = try await Subprocess.run(cli.path, ["stats", "--all", "--", "/bin/sh", "-c", script, hello.path], timeout: 30)
    #expect(all.exitedCleanly, "\(all)")
    let headings = all.stdoutLines.filter { $0.hasPrefix("GoAlloc statistics of ") }
    #expect(headings.count == 2, "\(all)")
    #expect(headings.first?.contains("process 1 of 2 to exit") == true && headings.last?.contains("process 2 of 2") == true, "\(all)")
    #expect(headings.allSatisfy { $0.contains("(\(hello.lastPathComponent))") }, "\(all)")

    let json = try await Subprocess.run(cli.path, ["stats", "--json", "--all", "--", "/bin/sh", "-c", script, hello.path], timeout: 30)
    let object = try #require(try JSONSerialization.jsonObject(with: Data((json.stdoutLines.last ?? "").utf8)) as? [String: Any], "\(json)")
    let list = try #require(object["all"] as? [[String: Any]], "\(json)")
    #expect(list.count == 2 && list.allSatisfy { ($0["pid"] as? Int ?? 0) > 0 && $0["process"] as? String == hello.lastPathComponent }, "\(json)")
    #expect(object["process"] as? String == hello.lastPathComponent, "\(json)")
  }

  @Test("goalloc stats explains a child killed by SIGABRT after a bad free")
  func killedBySignal() async throws {
    let cli = try Paths.requireCLI()
    let prog = try await FixtureBuilder.shared.executable("doublefree.c")
    let r = try await Subprocess.run(cli.path, ["stats", "--", prog.path], timeout: 30)
    #expect(!r.timedOut && r.reason == .exit && r.status == 128 + SIGABRT, "the shell's status for SIGABRT\n\(r)")
    #expect(r.stdoutLines == ["freed once"], "\(r)")
    let explanation = try #require(r.stderrLines.last, "\(r)")
    #expect(r.stderrLines.first?.hasPrefix("goalloc: free(): ") == true, "the library's report comes through\n\(r)")
    #expect(explanation.contains("killed by signal \(SIGABRT)") && explanation.contains("bad free"), "\(r)")
    #expect(!explanation.contains("_exit") && !explanation.contains("static"), "no unrelated causes\n\(r)")
  }

  @Test("goalloc stats of a program that makes no allocation, as its help says")
  func noAllocation() async throws {
    let cli = try Paths.requireCLI()
    let help = try await Subprocess.run(cli.path, ["stats", "--help"], timeout: 30)
    #expect(help.stdout.replacingOccurrences(of: "\n", with: " ").contains("makes no allocation"), "\(help)")
    let prog = try await FixtureBuilder.shared.executable("noalloc.c")
    let r = try await Subprocess.run(cli.path, ["stats", "--", prog.path], timeout: 30)
    #expect(r.exitedCleanly && r.stdoutLines.first?.hasPrefix("GoAlloc statistics of pid ") == true, "it still reports\n\(r)")
  }
}
