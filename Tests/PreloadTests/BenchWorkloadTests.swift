// `goalloc bench`'s rows of issue 17, run through the command itself with --quick and one run:
// every pattern workload compiles and runs under glibc and under libgoalloc.so (which must serve
// its allocations: GOALLOC_DEBUG=stats=1 reaches the workloads) and prints a result line with
// ops=N; the application rows run when their programs are installed and are skipped, with the
// package to install, when they are not. Benchmarks, not timings: nothing here asserts on speed.
import Foundation
import Testing

@Suite("goalloc bench: pattern workloads and application rows")
struct BenchWorkloadTests {
  static let patterns = ["ring", "ring64k", "ring128k", "ring200k", "xthread", "randsmall", "trees", "trees2",
                         "pareto", "pareto2", "falseshare", "server"]
  /// Application row -> the programs it needs.
  static let apps: [(row: String, programs: [String])] = [
    ("redis", ["redis-server", "redis-benchmark", "redis-cli"]), ("python", ["python3"]), ("sqlite", ["sqlite3"]), ("gcc", ["gcc"]),
  ]

  /// `goalloc bench --quick --runs 1 --no-go` of `workloads` under glibc and goalloc, into a new folder.
  static func bench(_ workloads: [String], environment: [String: String] = [:]) async throws -> (ProcessResult, URL) {
    let cli = try Paths.requireCLI()
    let dir = try Paths.freshDirectory("bench17")
    let args = ["bench", "--quick", "--runs", "1", "--no-go", "--allocator", "glibc", "--allocator", "goalloc",
                "--source", Paths.packageRoot.path, "--out", dir.path] + workloads.flatMap { ["--workload", $0] }
    let r = try await Subprocess.run(cli.path, args, environment: environment, timeout: 300)
    return (r, dir)
  }

  /// results.tsv as "workload allocator" -> (status, rate).
  static func samples(_ dir: URL) throws -> [String: (status: String, rate: String)] {
    let text = try String(contentsOf: dir.appendingPathComponent("results.tsv"), encoding: .utf8)
    var rows: [String: (String, String)] = [:]
    for line in text.split(separator: "\n").dropFirst() {
      let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
      if f.count >= 8 { rows["\(f[0]) \(f[1])"] = (f[6], f[7]) }
    }
    return rows
  }

  static func log(_ dir: URL, _ name: String) -> String {
    (try? String(contentsOf: dir.appendingPathComponent("logs/\(name)"), encoding: .utf8)) ?? ""
  }

  /// The ops=N of a result line `PROGRAM: ops=N ...` in `output`, or nil.
  static func ops(_ output: String) -> Int? {
    for line in output.split(separator: "\n").reversed() {
      let words = line.split(separator: " ")
      guard words.count > 1, words[0].hasSuffix(":"), words[1].hasPrefix("ops="), let n = Int(words[1].dropFirst(4)) else { continue }
      return n
    }
    return nil
  }

  /// The stats blocks a preloaded run left in its log (GOALLOC_DEBUG=stats=1), checked as for any run.
  static func expectServed(_ stderr: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let r = ProcessResult(command: [what], status: 0, reason: .exit, stdout: "", stderr: stderr, timedOut: false, seconds: 0)
    expectServedByGoAlloc(r, sourceLocation: sourceLocation)
  }

  @Test("every pattern workload runs with its quick arguments under glibc and goalloc and prints ops=N")
  func patternWorkloads() async throws {
    let (r, dir) = try await Self.bench(Self.patterns, environment: ["GOALLOC_DEBUG": "stats=1"])
    #expect(r.exitedCleanly, "\(r)")
    let rows = try Self.samples(dir)
    let report = (try? String(contentsOf: dir.appendingPathComponent("results.md"), encoding: .utf8)) ?? ""
    for w in Self.patterns {
      for a in ["glibc", "goalloc"] {
        #expect(rows["\(w) \(a)"]?.status == "exit:0", "\(w) under \(a): \(String(describing: rows["\(w) \(a)"]))\n\(r)")
        let out = Self.log(dir, "\(w).\(a).out")
        #expect((Self.ops(out) ?? 0) > 0, "\(w) under \(a) printed no `NAME: ops=N` line:\n\(out)")
        #expect(report.contains("\n\(w.padding(toLength: max(10, w.count), withPad: " ", startingAt: 0)) \(a)"),
                "the report lists \(w)'s result line under \(a)")
      }
      Self.expectServed(Self.log(dir, "\(w).goalloc.err"), "\(w) under goalloc")
      #expect(!Self.log(dir, "\(w).glibc.err").contains("goalloc: Mallocs"), "\(w) under glibc ran on libgoalloc.so")
    }
  }

  @Test("application rows whose programs are missing are skipped, each with the package to install")
  func applicationsMissing() async throws {
    // A PATH with the compiler, its assembler and linker and cp, but none of the applications.
    let bin = try Paths.freshDirectory("path")
    for tool in ["cc", "as", "ld", "cp", "sha256sum"] {
      if let p = Paths.which(tool) {
        try FileManager.default.createSymbolicLink(atPath: bin.appendingPathComponent(tool).path, withDestinationPath: p)
      }
    }
    let (r, dir) = try await Self.bench(Self.apps.map(\.row), environment: ["PATH": bin.path])
    #expect(r.exitedCleanly, "\(r)")
    let report = (try? String(contentsOf: dir.appendingPathComponent("results.md"), encoding: .utf8)) ?? ""
    for (row, programs) in Self.apps {
      let line = r.stderrLines.first { $0.hasPrefix("goalloc bench: \(row) skipped: ") } ?? ""
      #expect(line.contains("not installed (apt-get install "), "no skip line for \(row)\n\(r)")
      for program in programs { #expect(line.contains(program), "\(row)'s skip line names \(program): \(line)") }
      #expect(report.contains("- Note: \(row) skipped: "), "the report notes that \(row) was skipped")
    }
    #expect(try Self.samples(dir).isEmpty, "nothing ran")
  }

  @Test("application rows run under glibc and goalloc where their programs are installed")
  func applicationsPresent() async throws {
    let (r, dir) = try await Self.bench(Self.apps.map(\.row), environment: ["GOALLOC_DEBUG": "stats=1"])
    #expect(r.exitedCleanly, "\(r)")
    let rows = try Self.samples(dir)
    let report = (try? String(contentsOf: dir.appendingPathComponent("results.md"), encoding: .utf8)) ?? ""
    for (row, programs) in Self.apps {
      guard programs.allSatisfy({ Paths.which($0) != nil }) else {
        #expect(r.stderrLines.contains { $0.hasPrefix("goalloc bench: \(row) skipped: ") }, "\(r)")
        continue
      }
      for a in ["glibc", "goalloc"] {
        #expect(rows["\(row) \(a)"]?.status == "exit:0", "\(row) under \(a): \(String(describing: rows["\(row) \(a)"]))\n\(r)")
        #expect(report.contains("\n\(row.padding(toLength: 10, withPad: " ", startingAt: 0)) \(a)"),
                "the report lists \(row)'s result line under \(a)")
      }
      // Where libgoalloc.so's stats are: the server for redis; the driver, cc1 and as for gcc.
      let served = row == "redis" ? "redis.goalloc.server.err" : "\(row).goalloc.err"
      Self.expectServed(Self.log(dir, served), "\(row) under goalloc")
      if row == "redis" {
        for a in ["glibc", "goalloc"] {
          #expect((Double(rows["redis \(a)"]?.rate ?? "") ?? 0) > 0, "requests/s of redis under \(a) in results.tsv")
        }
      }
    }
  }
}
