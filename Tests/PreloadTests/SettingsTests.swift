// Settings are checked: each unknown GOALLOC_DEBUG key, bad value, unwritable output file and bad
// GOALLOC_MEMLIMIT gets exactly one warning line on stderr that names it, and the program runs on
// with that setting's default; good settings get no warning at all.
import Foundation
import Testing

@Suite("settings checks")
struct SettingsTests {
  /// Runs the hello fixture with the settings; checks it ran normally and returns its result.
  func runHello(debug: String?, memlimit: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> ProcessResult {
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    var env: [String: String] = [:]
    if let memlimit { env["GOALLOC_MEMLIMIT"] = memlimit }
    let r = try await Subprocess.run(hello.path, preload: Preload(library: true, debug: debug), environment: env, timeout: 30)
    #expect(r.exitedCleanly, "\(r)", sourceLocation: sourceLocation)
    #expect(r.stdoutLines.first == "hello from gcc", "the program runs on\n\(r)", sourceLocation: sourceLocation)
    return r
  }

  /// The warning lines (stderr lines from the allocator that are not stats).
  func warnings(_ r: ProcessResult) -> [String] {
    r.stderrWithoutStats.filter { $0.hasPrefix("goalloc: ") }
  }

  @Test("one warning line per bad GOALLOC_DEBUG item, naming it, then the default")
  func badDebugItems() async throws {
    let dir = try Paths.freshDirectory("settings")
    let cases: [(item: String, says: String)] = [
      ("foo=1", "unknown setting"),
      ("stats=yes", "expected 0 or 1; using the default (stats=0)"),
      ("badfree=maybe", "expected abort or warn; using the default (badfree=abort)"),
      ("check", "expected key=value"),
      ("memprofilerate=-3", "using the default (memprofilerate=524288)"),
      ("heapmap=/nonexistent-goalloc/map.txt", "cannot write the file: no such folder; using the default (no heap map)"),
      ("memprofile=\(dir.path)", "cannot write the file: it is a folder; using the default (no heap profile)"),
      ("allocfreetrace=/nonexistent-goalloc/t.trace", "using the default (no trace)"),
    ]
    for c in cases {
      let r = try await runHello(debug: c.item)
      let w = warnings(r)
      #expect(w.count == 1, "exactly one warning for \(c.item)\n\(r)")
      #expect(w.first?.hasPrefix("goalloc: GOALLOC_DEBUG: \(c.item): ") == true, "it names the setting\n\(r)")
      #expect(w.first?.contains(c.says) == true, "\(c.item): \(w)")
    }
    // Several at once: one line each, and the good ones still apply.
    let r = try await runHello(debug: "foo=1,stats=1,heapmap=/nonexistent-goalloc/m,bar")
    #expect(warnings(r).count == 3, "\(r)")
    #expect(Stats.blocks(r.stderr).count == 1, "stats=1 still applies\n\(r)")
    #expect(!FileManager.default.fileExists(atPath: "/nonexistent-goalloc"))
  }

  @Test("a bad GOALLOC_MEMLIMIT warns once and means no limit", arguments: ["abc", "-5", "1XB", "12 MiB", "99999999999999999999"])
  func badMemLimit(_ value: String) async throws {
    let r = try await runHello(debug: nil, memlimit: value)
    let w = warnings(r)
    #expect(w.count == 1, "\(r)")
    #expect(w.first?.hasPrefix("goalloc: GOALLOC_MEMLIMIT=\(value): ") == true, "\(r)")
    #expect(w.first?.hasSuffix("using the default (no limit)") == true, "\(r)")
  }

  @Test("good settings get no warning")
  func goodSettings() async throws {
    let dir = try Paths.freshDirectory("settings-good")
    let good = "stats=0,check=1,scavenger=1,fixedheap=1,fixedheap=0,badfree=warn,badfree=abort,tracestack=0,"
      + "memprofilerate=4096,heapmap=\(dir.path)/map-%p.txt,,stats=0"
    for limit in [nil, "512MiB", "1g", "1048576", "64KB", "2T", "0"] {
      let r = try await runHello(debug: good, memlimit: limit)
      #expect(warnings(r).isEmpty, "\(good) GOALLOC_MEMLIMIT=\(limit ?? "-")\n\(r)")
    }
    let maps = try FileManager.default.contentsOfDirectory(atPath: dir.path)
    #expect(maps.count == 7 && maps.allSatisfy { $0.hasPrefix("map-") }, "heapmap=... with %p still writes: \(maps)")
  }

  @Test("the last good value of a key wins")
  func lastValueWins() async throws {
    let on = try await runHello(debug: "stats=0,stats=1")
    #expect(Stats.blocks(on.stderr).count == 1, "\(on)")
    let off = try await runHello(debug: "stats=1,stats=0")
    #expect(Stats.blocks(off.stderr).isEmpty && off.stderrLines.isEmpty, "\(off)")
    // A bad value leaves the earlier good one in place (and warns).
    let kept = try await runHello(debug: "stats=1,stats=yes")
    #expect(Stats.blocks(kept.stderr).count == 1 && warnings(kept).count == 1, "\(kept)")
  }

  @Test("allocfreetrace=1 writes the trace to stderr")
  func traceToStderr() async throws {
    let r = try await runHello(debug: "allocfreetrace=1")
    #expect(warnings(r).isEmpty, "\(r)")
    #expect(r.stderrLines.first == "# goalloc allocfreetrace v1", "\(r)")
    #expect(r.stderrLines.filter { $0.hasPrefix("a ") }.count >= 1000, "hello's 1000 mallocs are traced")
  }
}
