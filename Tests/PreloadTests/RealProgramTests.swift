// Real programs under libgoalloc.so with GOALLOC_DEBUG=stats=1: each must produce its real
// output (compared with a run on glibc's malloc, or with values computed here) and print a
// stats block with Mallocs > 0 (the process really allocated through GoAlloc). sqlite3 and git
// are checked with the reliability suite (ReliabilityTests.swift).
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
