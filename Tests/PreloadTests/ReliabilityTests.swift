// Reliability (issue 4): tests that can fail, showing that libgoalloc.so keeps every live object
// intact under load, faults and bad input. This file (with BadFreeTests.swift) is the one place
// that says what reliability means; the C programs and data it runs live in Tests/Reliability
// (README.md there describes them).
//
// By default (`swift test`) every part runs, briefly: the fuzz target on its standalone driver
// (corpus + a few hundred generated inputs), the limits programs, bad frees, sqlite3 and git.
// GOALLOC_RELIABILITY=full (.ci/run) adds the long parts: libFuzzer (GOALLOC_FUZZ_RUNS runs,
// default 5000, plus a tenth as many with bad frees) and CPython's regression tests without and
// with the library. GOALLOC_LIB=/path/to/libgoalloc.so tests another build of the library (.ci/run:
// the release build); GOALLOC_FUZZ_SEED fixes the fuzz seed (printed on every run). Fuzz crash
// inputs and CPython logs are kept in .build/reliability/.
import Foundation
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

enum Reliability {
  static let environment = ProcessInfo.processInfo.environment
  /// GOALLOC_RELIABILITY=full: the long parts too.
  static let full = environment["GOALLOC_RELIABILITY"] == "full"
  /// Tests/Reliability: the programs, the fuzz corpus, the sqlite3 and git workloads.
  static let folder = Paths.packageRoot.appendingPathComponent("Tests/Reliability")
  /// Kept after the run: fuzz crash inputs, CPython's logs.
  static let work = Paths.packageRoot.appendingPathComponent(".build/reliability")

  /// The library under test: GOALLOC_LIB, else the one built beside the tests.
  static func library() throws -> URL {
    guard let path = environment["GOALLOC_LIB"], !path.isEmpty else { return try Paths.requireLibrary() }
    guard FileManager.default.isReadableFile(atPath: path) else { throw HarnessError.missing("GOALLOC_LIB=\(path) not found") }
    return URL(fileURLWithPath: path)
  }

  static func preload(debug: String? = nil) throws -> Preload {
    Preload(library: true, debug: debug, path: try library())
  }

  /// A C program of Tests/Reliability, built once per test process with cc (or `compiler`).
  static func program(_ source: String, name: String? = nil, compiler: String = "cc",
                      flags: [String] = []) async throws -> URL {
    try await FixtureBuilder.shared.executable(
      name: name ?? (source as NSString).deletingPathExtension,
      source: folder.appendingPathComponent(source), compiler: compiler,
      flags: ["-O2", "-g", "-Wall", "-Wextra", "-Wno-free-nonheap-object", "-I", folder.path] + flags,
      libraries: ["-lpthread", "-ldl"])
  }

  /// One summary line per part on stdout (the figures README.md quotes come from these).
  static func say(_ line: String) { print("reliability: \(line)") }

  /// A fresh folder under .build/reliability.
  static func freshWork(_ name: String) throws -> URL {
    let url = work.appendingPathComponent(name)
    try? FileManager.default.removeItem(at: url)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }
}

@Suite("reliability (Tests/Reliability)")
struct ReliabilityTests {}

// MARK: - fuzz_ops.c

extension ReliabilityTests {
  @Suite("fuzz_ops.c: allocator operations decoded from fuzz inputs, every live block checked")
  struct Fuzz {
    static let corpus = Reliability.folder.appendingPathComponent("corpus")
    static let seed: UInt64 = Reliability.environment["GOALLOC_FUZZ_SEED"].flatMap { UInt64($0) }
      ?? UInt64(Date().timeIntervalSince1970) % 100_000 + 1
    /// Clean runs: libFuzzer runs (full) or generated inputs for the standalone driver (default).
    static let runs = Reliability.environment["GOALLOC_FUZZ_RUNS"].flatMap { Int($0) } ?? (Reliability.full ? 5000 : 300)
    static let badRuns = max(runs / 10, 100)
    static let libFuzzerArguments = ["-max_len=1024", "-timeout=60", "-rss_limit_mb=4096", "-print_final_stats=1"]

    /// The standalone driver (no libFuzzer): replays files and folders, or `-random N SEED MAXLEN`.
    static func standalone() async throws -> URL {
      try await Reliability.program("fuzz_ops.c", name: "fuzz_replay", flags: ["-DFUZZ_STANDALONE"])
    }

    /// The libFuzzer build (full mode only), or nil when no clang here can link -fsanitize=fuzzer.
    static func libFuzzer() async throws -> URL? {
      guard Reliability.full, let clang = await fuzzClang.value else { return nil }
      return try await Reliability.program("fuzz_ops.c", name: "fuzz_ops", compiler: clang, flags: ["-fsanitize=fuzzer"])
    }

    /// A clang that links libFuzzer: FUZZ_CC, the Swift toolchain's own (it ships
    /// libclang_rt.fuzzer), else one on PATH.
    static let fuzzClang = Task<String?, Never> {
      var candidates: [String] = []
      if let cc = Reliability.environment["FUZZ_CC"] { candidates.append(cc) }
      if let swift = Paths.which("swift") {
        candidates.append(URL(fileURLWithPath: swift).resolvingSymlinksInPath().deletingLastPathComponent()
          .appendingPathComponent("clang").path)
      }
      candidates += ["/opt/swift/usr/bin/clang"] + ["clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14"]
        .compactMap { Paths.which($0) }
      guard let dir = try? Paths.freshDirectory("fuzz-probe") else { return nil }
      let src = dir.appendingPathComponent("probe.c")
      try? "int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n"
        .write(to: src, atomically: true, encoding: .utf8)
      for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
        let r = try? await Subprocess.run(c, ["-fsanitize=fuzzer", src.path, "-o", dir.appendingPathComponent("probe").path],
                                          timeout: 120)
        if r?.exitedCleanly == true { return c }
      }
      return nil
    }

    /// Fails on any failed check, libFuzzer error or deadly signal in `r`.
    static func expectClean(_ r: ProcessResult, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
      let log = r.stdout + r.stderr
      #expect(r.exitedCleanly, "\(what) (seed \(seed))\n\(r)", sourceLocation: sourceLocation)
      for marker in ["FAILURE", "deadly signal", "ERROR: libFuzzer"] {
        #expect(!log.contains(marker), "\(what): \(marker) (seed \(seed))\n\(r)", sourceLocation: sourceLocation)
      }
    }

    static func totals(_ r: ProcessResult, _ prefix: String) -> String? {
      (r.stdoutLines + r.stderrLines).last { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// Runs the fuzz target under the library: libFuzzer (full mode) from the corpus, or the
    /// standalone driver on the corpus and `runs` generated inputs. `name` names the work folder
    /// (crash inputs are written there).
    static func run(_ name: String, runs: Int, seed: UInt64, environment: [String: String],
                    debug: String? = nil, corpusToo: Bool = true) async throws -> (ProcessResult, String) {
      var env = ["FUZZ_REQUIRE_GOALLOC": "1", "FUZZ_STATS": "1"]
      env.merge(environment) { $1 }
      let preload = try Reliability.preload(debug: debug)
      let replay = "GOALLOC_LIB=\(try Reliability.library().path) Scripts/reliability.sh replay"
      if let fuzzer = try await libFuzzer() {
        let dir = try Reliability.freshWork("fuzz-\(name)")
        let newCorpus = dir.appendingPathComponent("new-corpus")
        try FileManager.default.createDirectory(at: newCorpus, withIntermediateDirectories: true)
        let r = try await Subprocess.run(
          fuzzer.path, ["-runs=\(runs)", "-seed=\(seed)"] + libFuzzerArguments
            + ["-artifact_prefix=\(dir.path)/", newCorpus.path, corpus.path],
          preload: preload, environment: env, timeout: 1800)
        let crashes = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
          .filter { ["crash-", "timeout-", "oom-", "leak-"].contains(where: $0.hasPrefix) }
          .map { "\(replay) \(dir.path)/\($0)" }
        return (r, "libFuzzer, seed \(seed)" + (crashes.isEmpty ? "" : "; reproduce with: " + crashes.joined(separator: "; ")))
      }
      let driver = try await standalone()
      var out = ProcessResult(command: [], status: 0, reason: .exit, stdout: "", stderr: "", timedOut: false, seconds: 0)
      if corpusToo {
        out = try await Subprocess.run(driver.path, [corpus.path], preload: preload, environment: env, timeout: 600)
        if !out.exitedCleanly { return (out, "standalone driver, corpus") }
      }
      let r = try await Subprocess.run(driver.path, ["-random", "\(runs)", "\(seed)", "1024"], preload: preload,
                                       environment: env, timeout: 1800)
      return (r, "standalone driver, seed \(seed); reproduce with: \(replay) -random \(runs) \(seed) 1024")
    }

    @Test("the harness passes on glibc's malloc: the corpus and 300 generated inputs")
    func control() async throws {
      let driver = try await Self.standalone()
      let corpus = try await Subprocess.run(driver.path, [Self.corpus.path], timeout: 600)
      Self.expectClean(corpus, "corpus under glibc")
      #expect(corpus.stdoutLines.last?.hasSuffix("inputs replayed OK") == true, "\(corpus)")
      let random = try await Subprocess.run(driver.path, ["-random", "300", "\(Self.seed)", "1024"], timeout: 600)
      Self.expectClean(random, "generated inputs under glibc")
    }

    @Test("clean operations under the library: no failed check, report or signal")
    func clean() async throws {
      let (r, how) = try await Self.run("clean", runs: Self.runs, seed: Self.seed, environment: [:])
      Self.expectClean(r, how)
      #expect(r.stderrWithoutStats.allSatisfy { !$0.hasPrefix("goalloc: ") }, "allocator reports\n\(r)")
      let totals = Self.totals(r, "fuzz_ops: totals: ")
      #expect(totals != nil, "no totals line\n\(r)")
      Reliability.say("fuzz: \(Self.runs) runs (\(how)): \(totals ?? "?")")
    }

    @Test("bad input (badfree=warn): every bad free() reported exactly once, no live block changed")
    func badInput() async throws {
      let (r, how) = try await Self.run("bad", runs: Self.badRuns, seed: Self.seed + 1, environment: ["FUZZ_BADFREE": "1"],
                                        debug: "badfree=warn", corpusToo: false)
      Self.expectClean(r, how)
      let lines = r.stderrLines
      // Every bad free() (interior, global, stack, double) gives one report; realloc and
      // malloc_usable_size of interior pointers report too but are not counted here.
      let reports = lines.filter {
        $0.range(of: #"^goalloc: (free|realloc|malloc_usable_size)\(\): (double free|invalid pointer)"#,
                 options: .regularExpression) != nil
      }.count
      let freeReports = lines.filter {
        $0.range(of: #"^goalloc: free\(\): (double free|invalid pointer)"#, options: .regularExpression) != nil
      }.count
      let kinds = Self.totals(r, "fuzz_ops: bad calls: ") ?? ""
      let counts = kinds.split(separator: ",").compactMap { Int($0.split(separator: " ").first ?? "") }
      #expect(counts.count == 6, "no `bad calls` line\n\(r)")
      let freeCalls = counts.prefix(4).reduce(0, +)
      #expect(reports > 0, "no bad call was reported\n\(r)")
      #expect(freeReports == freeCalls, "\(freeReports) free() reports for \(freeCalls) bad frees (\(how))")
      Reliability.say("fuzz: bad input: \(Self.badRuns) runs (\(how)): calls: \(kinds); \(reports) reports")
    }
  }
}

// MARK: - limits

extension ReliabilityTests {
  @Suite("limits: out of address space, many threads, huge sizes")
  struct Limits {
    @Test("the limits programs pass on glibc's malloc (control)",
          arguments: [["limits_oom.c", "256"], ["limits_threads.c", "20000", "50", "64"], ["limits_huge.c"]])
    func control(_ command: [String]) async throws {
      let exe = try await Reliability.program(command[0])
      let r = try await Subprocess.run(exe.path, Array(command.dropFirst()), timeout: 600)
      #expect(r.exitedCleanly, "\(r)")
      #expect(r.stdout.contains("goalloc NOT loaded"), "\(r)")
    }

    @Test("limits_oom.c: RLIMIT_AS = VmSize + N MiB: NULL + ENOMEM from every entry point, blocks intact, the same fits again after freeing",
          arguments: [256, 64, 8])
    func outOfAddressSpace(headroomMiB: Int) async throws {
      let exe = try await Reliability.program("limits_oom.c")
      let r = try await Subprocess.run(exe.path, ["\(headroomMiB)"], preload: try Reliability.preload(), timeout: 600)
      #expect(r.exitedCleanly, "\(r)")
      #expect(r.stdout.contains("goalloc loaded"), "\(r)")
      #expect(r.stdoutLines.last == "limits_oom: OK", "\(r)")
      let figures = r.stdoutLines.filter { $0.contains("at the limit") || $0.contains("round 2") }
        .map { $0.trimmingCharacters(in: .whitespaces) }
      Reliability.say("limits: RLIMIT_AS = VmSize + \(headroomMiB) MiB: \(figures.joined(separator: "; "))")
    }

    @Test("limits_threads.c: 20 000 short-lived threads: RSS bounded, thread caches given back")
    func shortLivedThreads() async throws {
      let exe = try await Reliability.program("limits_threads.c")
      let r = try await Subprocess.run(exe.path, ["20000", "50", "64"], preload: try Reliability.preload(debug: "stats=1"),
                                       timeout: 600)
      #expect(r.exitedCleanly, "\(r)")
      #expect(r.stdout.contains("goalloc loaded"), "\(r)")
      #expect(r.stdoutLines.last == "limits_threads: OK", "\(r)")
      let caches = Stats.blocks(r.stderr).last?["ThreadCaches"]
      #expect(caches != nil && caches! <= 2, "ThreadCaches at exit: \(caches.map(String.init) ?? "missing") (thread caches not given back)\n\(r)")
      let rss = r.stdoutLines.first { $0.contains("VmRSS") }?.trimmingCharacters(in: .whitespaces) ?? "?"
      Reliability.say("limits: 20000 threads: \(rss); ThreadCaches at exit: \(caches.map(String.init) ?? "?")")
    }

    @Test("limits_huge.c: huge and overflowing sizes and alignments fail cleanly, the program goes on")
    func hugeSizes() async throws {
      let exe = try await Reliability.program("limits_huge.c")
      let r = try await Subprocess.run(exe.path, preload: try Reliability.preload(), timeout: 600)
      #expect(r.exitedCleanly, "\(r)")
      #expect(r.stdout.contains("goalloc loaded"), "\(r)")
      let last = r.stdoutLines.last ?? ""
      #expect(last.hasPrefix("limits_huge: ") && last.hasSuffix(", 0 failed: OK"), "\(r.stdoutLines.filter { $0.hasPrefix("FAIL") })\n\(r)")
      Reliability.say("limits: \(last.dropFirst("limits_huge: ".count))")
    }
  }
}

// MARK: - real programs: sqlite3, git, CPython

extension ReliabilityTests {
  enum SQLiteWorkload: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case bulk, mixed

    var testDescription: String {
      switch self {
      case .bulk: return "100 000 rows in one transaction, an index, count/sum queries (checked against values computed here)"
      case .mixed: return "sqlite_workload.sql + 4000 single-row inserts, updates and deletes"
      }
    }

    static let bulkScript = """
      CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, s TEXT);
      BEGIN;
      WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
        INSERT INTO t(v, s) SELECT (x * 7919) % 100003, 'row' || x FROM c;
      COMMIT;
      CREATE INDEX iv ON t(v);
      SELECT count(*), sum(v), sum(length(s)) FROM t;
      SELECT count(*), min(v), max(v) FROM t WHERE v BETWEEN 1000 AND 2000;
      SELECT s FROM t WHERE v = 7919;
      PRAGMA integrity_check;

      """

    /// What the bulk script prints, computed here.
    static func bulkExpected() -> [String] {
      let values = (1...100_000).map { ($0 * 7919) % 100_003 }
      let sumLen = (1...100_000).reduce(0) { $0 + 3 + String($1).count }
      let inRange = values.filter { (1000...2000).contains($0) }
      let row7919 = (1...100_000).filter { ($0 * 7919) % 100_003 == 7919 }.map { "row\($0)" }
      return ["100000|\(values.reduce(0, +))|\(sumLen)", "\(inRange.count)|\(inRange.min()!)|\(inRange.max()!)"]
        + row7919 + ["ok"]
    }

    /// The workload file, then 4000 generated single-row statements, then checks.
    static func mixedScript() throws -> String {
      var sql = try String(contentsOf: Reliability.folder.appendingPathComponent("sqlite_workload.sql"), encoding: .utf8)
      sql += "CREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER, msg TEXT, data BLOB);\n"
      let letters = Array("abcdefghijklmnopqrstuvwxyz")
      for i in 1...4000 {
        if i % 10 == 0 {
          sql += "UPDATE log SET msg = msg || '+' WHERE id = \(i / 2);\n"
        } else if i % 17 == 0 {
          sql += "DELETE FROM log WHERE id = \(i - 5);\n"
        } else {
          let tail = String(letters[(i % 26)...])
          sql += "INSERT INTO log (id, at, msg, data) VALUES (\(i), \(i * 37 % 1000), 'message \(i) \(tail)', zeroblob(\(i % 700)));\n"
        }
      }
      sql += """
        SELECT count(*), sum(at), sum(length(msg)), sum(length(data)) FROM log;
        SELECT msg FROM log ORDER BY length(msg) DESC, id LIMIT 5;
        PRAGMA integrity_check;

        """
      return sql
    }
  }

  @Suite("real programs: output identical with and without the library")
  struct Programs {
    @Test("sqlite3", arguments: SQLiteWorkload.allCases)
    func sqlite(_ workload: SQLiteWorkload) async throws {
      let sqlite3 = try Paths.requireTool("sqlite3")
      let dir = try Paths.freshDirectory("sqlite")
      let script = dir.appendingPathComponent("script.sql")
      try (workload == .bulk ? SQLiteWorkload.bulkScript : SQLiteWorkload.mixedScript())
        .write(to: script, atomically: true, encoding: .utf8)
      async let plainRun = Subprocess.run(sqlite3, [dir.appendingPathComponent("plain.db").path], stdin: script, timeout: 300)
      let r = try await Subprocess.run(sqlite3, [dir.appendingPathComponent("goalloc.db").path],
                                       preload: try Reliability.preload(debug: "stats=1"), stdin: script, timeout: 300)
      let plain = try await plainRun
      #expect(plain.exitedCleanly, "\(plain)")
      #expect(r.exitedCleanly, "\(r)")
      if workload == .bulk { #expect(r.stdoutLines == SQLiteWorkload.bulkExpected(), "\(r)") }
      #expect(r.stdoutLines.last == "ok", "integrity_check\n\(r)")
      #expect(r.stdout == plain.stdout, "output differs from the run on glibc's malloc\n\(r)\n\(plain)")
      #expect(r.stderrWithoutStats.isEmpty, "\(r)")
      let blocks = expectServedByGoAlloc(r, blocks: 1...1)
      #expect((blocks.first?["Mallocs"] ?? 0) > 10_000, "\(r)")
      Reliability.say("sqlite3 (\(workload.rawValue)): \(r.stdoutLines.count) output lines identical; Mallocs \(blocks.first?["Mallocs"] ?? 0)")
    }

    @Test("git: a deterministic session (git_workflow.sh) with every process of it (git, sh, sed, awk) on the library")
    func gitSession() async throws {
      _ = try Paths.requireTool("git")
      let bash = try Paths.requireTool("bash")
      let script = Reliability.folder.appendingPathComponent("git_workflow.sh").path
      let dir = try Paths.freshDirectory("git")
      async let plainRun = Subprocess.run(bash, [script, dir.appendingPathComponent("without").path], timeout: 600)
      let r = try await Subprocess.run(bash, [script, dir.appendingPathComponent("with").path],
                                       preload: try Reliability.preload(debug: "stats=1"), timeout: 600)
      let plain = try await plainRun
      #expect(plain.exitedCleanly, "\(plain)")
      #expect(r.exitedCleanly, "\(r)")
      // Stats lines land on stdout too where the session pipes a command's stderr into stdout.
      #expect(r.stdoutLines.filter { !$0.hasPrefix("goalloc: ") } == plain.stdoutLines,
              "output differs from the run on glibc's malloc\n\(r)\n\(plain)")
      // The processes of a pipeline exit together and their stats lines (several writes each) may
      // interleave: stderr is checked for allocator reports only, and lines are counted, not blocks.
      let reports = r.stderrLines.filter { $0.contains("goalloc: ") && $0.contains("(): ") }
      #expect(reports.isEmpty, "allocator reports: \(reports)")
      let all = r.stdoutLines + r.stderrLines
      let mallocs = all.compactMap { Stats.parseLine($0) }.filter { $0.0 == "Mallocs" }.map(\.1)
      let badFrees = all.compactMap { Stats.parseLine($0) }.filter { $0.0 == "BadFrees" && $0.1 != 0 }
      #expect(mallocs.count > 100 && mallocs.contains { $0 > 0 }, "the session's processes did not run on GoAlloc\n\(r)")
      #expect(badFrees.isEmpty, "BadFrees \(badFrees)\n\(r)")
      #expect(!(r.stdout + r.stderr).contains("cannot be preloaded"), "\(r)")
      Reliability.say("git: a session of \(plain.stdoutLines.count) output lines identical; \(mallocs.count) processes on GoAlloc (largest Mallocs \(mallocs.max() ?? 0))")
    }

    // MARK: CPython

    static let cpythonTests = """
      test_dict test_list test_set test_unicode test_str test_json test_re test_threading
      test_thread test_gc test_pickle test_bytes test_string test_tuple test_deque test_heapq
      test_collections test_itertools test_array test_struct test_zlib test_bz2 test_lzma
      test_memoryview test_weakref test_sort test_functools test_hashlib test_mmap test_ctypes
      test_sqlite3 test_decimal test_ordered_dict test_marshal test_long test_csv test_xml_etree
      test_copy test_enum test_ast test_sys test_capi test_tracemalloc test_queue test_os test_codecs
      test_unicodedata test_email
      """.split(whereSeparator: \.isWhitespace).map(String.init)
    /// Test files that never look at a child's stderr: they run once more with GOALLOC_DEBUG=stats=1,
    /// the proof that the library served them.
    static let cpythonProofTests = ["test_dict", "test_list", "test_set", "test_unicode", "test_pickle", "test_re"]
    /// Fails here without the library as well: this machine's site-packages .pth imports threading.
    static let cpythonIgnore = Reliability.environment["GOALLOC_CPYTHON_IGNORE"] ?? "test_import_from_another_thread"

    /// The real interpreter (not a pyenv shim) of a python3 that has the regression tests.
    static func python() async throws -> String {
      for candidate in [Reliability.environment["GOALLOC_PYTHON"], Paths.which("python3"), "/usr/bin/python3"] {
        guard let c = candidate, FileManager.default.isExecutableFile(atPath: c) else { continue }
        let r = try await Subprocess.run(c, ["-c", "import os, sys, test.libregrtest, test.support, test.test_dict; "
                                             + "print(os.path.realpath(sys.executable))"], timeout: 120)
        let exe = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        if r.exitedCleanly && exe.hasPrefix("/") { return exe }
      }
      throw HarnessError.missing("no python3 with CPython's regression tests (the `test` package; Debian: libpython3.X-testsuite)")
    }

    /// The result of each test case in a regrtest JUnit XML file: "pass", "fail" or "skip".
    static func junitResults(_ url: URL) throws -> [String: String] {
      final class Collector: NSObject, XMLParserDelegate {
        var results: [String: String] = [:]
        var current: String?
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String]) {
          if name == "testcase" {
            current = "\(attributes["classname"] ?? "").\(attributes["name"] ?? "")"
            results[current!] = "pass"
          } else if let c = current, name == "failure" || name == "error" {
            results[c] = "fail"
          } else if let c = current, name == "skipped", results[c] == "pass" {
            results[c] = "skip"
          }
        }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
          if name == "testcase" { current = nil }
        }
      }
      let collector = Collector()
      let parser = XMLParser(data: try Data(contentsOf: url))
      parser.delegate = collector
      guard parser.parse() else { throw HarnessError.missing("\(url.path): not a JUnit XML file") }
      return collector.results
    }

    @Test("CPython's regression tests (PYTHONMALLOC=malloc): every case that passes without the library passes with it",
          .enabled(if: Reliability.full, "GOALLOC_RELIABILITY=full"))
    func cpython() async throws {
      let python = try await Self.python()
      let dir = try Reliability.freshWork("cpython")
      let testDir = try await Subprocess.run(python, ["-c", "import os, test; print(os.path.dirname(test.__file__))"], timeout: 60)
        .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      let tests = Self.cpythonTests.filter {
        FileManager.default.fileExists(atPath: "\(testDir)/\($0).py") || FileManager.default.fileExists(atPath: "\(testDir)/\($0)")
      }
      #expect(tests.count > 40, "only \(tests.count) of the test files exist in \(testDir)")
      let env = ["PYTHONMALLOC": Reliability.environment["GOALLOC_PYTHONMALLOC"] ?? "malloc"]
      let args = ["-m", "test", "-j2", "--timeout", "600", "-i", Self.cpythonIgnore]
      func regrtest(_ name: String, _ files: [String], preload: Preload, xml: Bool) async throws -> ProcessResult {
        let r = try await Subprocess.run(
          python, args + (xml ? ["--junit-xml", dir.appendingPathComponent("\(name).xml").path] : []) + files,
          preload: preload, environment: env, directory: dir, timeout: 1500)
        try (r.stdout + r.stderr).write(to: dir.appendingPathComponent("\(name).log"), atomically: true, encoding: .utf8)
        return r
      }
      // Without, then with the library; no GOALLOC_DEBUG=stats=1 here: every process would print its
      // statistics on stderr, and the many tests that check a child's stderr is empty would fail.
      let without = try await regrtest("without", tests, preload: .none, xml: true)
      let with = try await regrtest("with", tests, preload: try Reliability.preload(), xml: true)
      let proof = try await regrtest("with-stats", Self.cpythonProofTests, preload: try Reliability.preload(debug: "stats=1"), xml: false)
      #expect(!without.timedOut && !with.timedOut, "logs in \(dir.path)")
      #expect(proof.exitedCleanly, "the stats run failed (see \(dir.path)/with-stats.log)")
      // regrtest passes its workers' stderr on to its stdout.
      let mallocs = (proof.stdoutLines + proof.stderrLines).compactMap { Stats.parseLine($0) }
        .filter { $0.0 == "Mallocs" }.map(\.1)
      #expect(mallocs.reduce(0, +) > 0, "no GoAlloc statistics: the library was not in effect")
      #expect(!(with.stdout + with.stderr + proof.stdout + proof.stderr).contains("cannot be preloaded"))

      // Case by case: one that passes without the library must pass with it (or be skipped there:
      // a skip decided at run time, e.g. test_os's "couldn't allocate two consecutive fds").
      let a = try Self.junitResults(dir.appendingPathComponent("without.xml"))
      let b = try Self.junitResults(dir.appendingPathComponent("with.xml"))
      let lost = a.filter { $0.value == "pass" && b[$0.key] != "pass" && b[$0.key] != "skip" }.keys.sorted()
      let newFailures = b.filter { $0.value == "fail" && a[$0.key] != "fail" }.keys.sorted()
      let bothFail = a.filter { $0.value == "fail" && b[$0.key] == "fail" }.keys.sorted()
      let skippedWith = a.filter { $0.value == "pass" && b[$0.key] == "skip" }.keys.sorted()
      #expect(lost.isEmpty, "pass without the library, not with it: \(lost)")
      #expect(newFailures.isEmpty, "fail with the library only: \(newFailures)")
      if !with.exitedCleanly { #expect(!without.exitedCleanly, "the run with the library failed, the one without passed") }
      func count(_ r: [String: String], _ v: String) -> Int { r.values.filter { $0 == v }.count }
      for (name, r) in [("without", a), ("with", b)] {
        Reliability.say("cpython: \(name): \(r.count) cases, \(count(r, "pass")) passed, \(count(r, "fail")) failed, \(count(r, "skip")) skipped")
      }
      if !skippedWith.isEmpty { Reliability.say("cpython: skipped with the library only: \(skippedWith)") }
      if !bothFail.isEmpty { Reliability.say("cpython: fail in both runs (environment): \(bothFail)") }
      Reliability.say("cpython: \(tests.count) files; stats run: \(mallocs.count) processes on GoAlloc, Mallocs total \(mallocs.reduce(0, +))")
    }
  }
}
