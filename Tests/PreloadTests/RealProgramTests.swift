// Real programs under libgoalloc.so with GOALLOC_DEBUG=stats=1: each must produce its real
// output (compared with a run on glibc's malloc, or with values computed here) and print a
// stats block with Mallocs > 0 (the process really allocated through GoAlloc).
import Foundation
import Testing

@Suite("real programs under libgoalloc.so")
struct RealProgramTests {
  // MARK: python3

  @Test("python3: dicts, lists, strings, json and 4 threads (PYTHONMALLOC=malloc)")
  func python() async throws {
    // `python3` may be a pyenv shim (a shell script): run the real interpreter directly.
    let shim = try Paths.requireTool("python3")
    let probe = try await Subprocess.run(shim, ["-c", "import sys; print(sys.executable)"], timeout: 60)
    let python = probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    try #require(probe.exitedCleanly && python.hasPrefix("/"), "\(probe)")
    let script = try Paths.fixture("workload.py").path
    // PYTHONMALLOC=malloc: every Python object goes through malloc, not only pymalloc's arenas.
    let env = ["PYTHONMALLOC": "malloc", "PYTHONDONTWRITEBYTECODE": "1"]
    async let plainRun = Subprocess.run(python, [script], environment: env, timeout: 120)
    let r = try await Subprocess.run(python, [script], preload: .goallocStats, environment: env, timeout: 120)
    let plain = try await plainRun
    #expect(plain.exitedCleanly, "\(plain)")
    #expect(r.exitedCleanly, "\(r)")
    let names = r.stdoutLines.map { $0.split(separator: " ").first.map(String.init) ?? "" }
    #expect(names == ["dicts", "json", "lists", "strings", "threads", "checksum"], "\(r)")
    #expect(r.stdout == plain.stdout, "checksums differ from the run on glibc's malloc\n\(r)\n\(plain)")
    #expect(r.stderrWithoutStats.isEmpty, "\(r)")
    let blocks = expectServedByGoAlloc(r, blocks: 1...1)
    #expect((blocks.first?["Mallocs"] ?? 0) > 500_000, "\(r)")
  }

  // MARK: sqlite3

  static let sql = """
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

  @Test("sqlite3: 100 000 rows in one transaction, an index, count/sum queries")
  func sqlite() async throws {
    let sqlite3 = try Paths.requireTool("sqlite3")
    let dir = try Paths.freshDirectory("sqlite")
    let script = dir.appendingPathComponent("script.sql")
    try Self.sql.write(to: script, atomically: true, encoding: .utf8)
    async let plainRun = Subprocess.run(sqlite3, [dir.appendingPathComponent("plain.db").path], stdin: script, timeout: 120)
    let r = try await Subprocess.run(sqlite3, [dir.appendingPathComponent("goalloc.db").path], preload: .goallocStats,
                                     stdin: script, timeout: 120)
    let plain = try await plainRun
    #expect(plain.exitedCleanly, "\(plain)")
    #expect(r.exitedCleanly, "\(r)")

    // The same numbers computed here.
    let values = (1...100_000).map { ($0 * 7919) % 100_003 }
    let sumV = values.reduce(0, +)
    let sumLen = (1...100_000).reduce(0) { $0 + 3 + String($1).count }
    let inRange = values.filter { (1000...2000).contains($0) }
    let row7919 = (1...100_000).filter { ($0 * 7919) % 100_003 == 7919 }.map { "row\($0)" }
    let expected = ["100000|\(sumV)|\(sumLen)",
                    "\(inRange.count)|\(inRange.min()!)|\(inRange.max()!)"] + row7919 + ["ok"]
    #expect(r.stdoutLines == expected, "\(r)")
    #expect(r.stdout == plain.stdout, "\(r)\n\(plain)")
    #expect(r.stderrWithoutStats.isEmpty, "\(r)")
    let blocks = expectServedByGoAlloc(r, blocks: 1...1)
    #expect((blocks.first?["Mallocs"] ?? 0) > 10_000, "\(r)")
  }

  // MARK: git

  @Test("git: init, add, commit, log in a temporary repository")
  func git() async throws {
    let git = try Paths.requireTool("git")
    let dir = try Paths.freshDirectory("git")
    let repo = dir.appendingPathComponent("repo")
    // No user or system configuration; a fixed identity and date.
    let env = ["HOME": dir.path, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
               "GIT_AUTHOR_DATE": "2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE": "2024-01-02T03:04:05Z",
               "LC_ALL": "C"]
    func gitRun(_ args: [String]) async throws -> ProcessResult {
      let r = try await Subprocess.run(git, args, preload: .goallocStats, environment: env,
                                       directory: FileManager.default.fileExists(atPath: repo.path) ? repo : dir,
                                       timeout: 60)
      #expect(r.exitedCleanly, "\(r)")
      #expect(r.stderrWithoutStats.isEmpty, "\(r)")
      expectServedByGoAlloc(r)
      return r
    }
    _ = try await gitRun(["-c", "init.defaultBranch=main", "init", "-q", repo.path])
    let files = repo.appendingPathComponent("files")
    try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
    for i in 0..<200 {
      let text = (0..<(i % 40 + 1)).map { "line \($0) of file \(i)" }.joined(separator: "\n") + "\n"
      try text.write(to: files.appendingPathComponent("f\(i).txt"), atomically: true, encoding: .utf8)
    }
    _ = try await gitRun(["add", "."])
    _ = try await gitRun(["-c", "user.name=Preload Test", "-c", "user.email=preload@example.com",
                          "commit", "-q", "-m", "goalloc preload commit"])
    let log = try await gitRun(["log", "--format=%s|%an|%ae"])
    #expect(log.stdoutLines == ["goalloc preload commit|Preload Test|preload@example.com"], "\(log)")
    let listed = try await gitRun(["ls-files"])
    #expect(listed.stdoutLines.count == 200, "\(listed)")
    let status = try await gitRun(["status", "--porcelain"])
    #expect(status.stdoutLines.isEmpty, "\(status)")
  }

  // MARK: gcc

  @Test("gcc compiles and links a C program under the library; it runs under it too")
  func gcc() async throws {
    let gcc = try Paths.requireTool("gcc")
    let dir = try Paths.freshDirectory("gcc")
    let out = dir.appendingPathComponent("hello")
    let compile = try await Subprocess.run(gcc, ["-O2", "-o", out.path, try Paths.fixture("hello.c").path],
                                           preload: .goallocStats, directory: dir, timeout: 120)
    #expect(compile.exitedCleanly, "\(compile)")
    #expect(compile.stdoutLines.isEmpty, "\(compile)")
    // Reported: cc1 is not PIE and takes free's address; with libgoalloc.so's protected
    // exports, ld.so warns about it (see InterpositionTests). Nothing else may appear.
    let protectedWarnings = compile.stderrWithoutStats.filter { $0.contains("direct reference to protected function") }
    #expect(compile.stderrWithoutStats.count == protectedWarnings.count, "\(compile.stderrWithoutStats)")
    #expect(protectedWarnings.isEmpty, "\(protectedWarnings)")
    // The driver and the programs it runs (cc1, as, collect2, ld) each print a block.
    expectServedByGoAlloc(compile, blocks: 2...20)
    let run = try await Subprocess.run(out.path, preload: .goallocStats, timeout: 30)
    #expect(run.exitedCleanly, "\(run)")
    let sum = (1...1000).reduce(0) { $0 + ($1 & 0xff) }
    #expect(run.stdoutLines == ["hello from gcc", "sum \(sum)"], "\(run)")
    expectServedByGoAlloc(run, blocks: 1...1)
  }

  // MARK: swiftc

  /// What Fixtures/workload.swift prints, computed here.
  static func expectedSwiftWorkload() -> [String] {
    var numbers: [Int] = []
    for i in 0..<200_000 { numbers.append(i &* 31 % 1000) }
    var counts: [String: Int] = [:]
    for i in 0..<100_000 { counts["k\(i % 5000)", default: 0] += i }
    var text = ""
    for (key, value) in counts.sorted(by: { $0.key < $1.key }).prefix(100) { text += "\(key)=\(value);" }
    var words: [String] = []
    for i in 0..<20_000 { words.append(String(repeating: "ab", count: i % 20) + String(i)) }
    let joined = words.joined(separator: " ")
    let nested = (0..<500).map { Array(0..<$0) }.filter { $0.count % 2 == 0 }
    return [
      "total \(numbers.reduce(0, +))",
      "keys \(counts.count) first \(text.prefix(24))",
      "words \(joined.split(separator: " ").count) chars \(joined.utf8.count)",
      "nested \(nested.count) sum \(nested.reduce(0) { $0 + $1.reduce(0, +) })",
    ]
  }

  @Test("swiftc compiles a Swift program under the library; it runs under it too")
  func swiftc() async throws {
    let swiftc = try Paths.requireTool("swiftc")
    let dir = try Paths.freshDirectory("swiftc")
    let out = dir.appendingPathComponent("workload")
    let compile = try await Subprocess.run(
      swiftc, ["-module-cache-path", dir.appendingPathComponent("cache").path, "-o", out.path,
               try Paths.fixture("workload.swift").path],
      preload: .goallocStats, directory: dir, timeout: 240)
    #expect(compile.exitedCleanly, "\(compile)")
    #expect(compile.stdoutLines.isEmpty && compile.stderrWithoutStats.isEmpty, "\(compile)")
    expectServedByGoAlloc(compile)
    let run = try await Subprocess.run(out.path, preload: .goallocStats, timeout: 60)
    #expect(run.exitedCleanly, "\(run)")
    #expect(run.stdoutLines == Self.expectedSwiftWorkload(), "\(run)")
    let blocks = expectServedByGoAlloc(run, blocks: 1...1)
    #expect((blocks.first?["Mallocs"] ?? 0) > 1_000, "\(run)")
  }
}
