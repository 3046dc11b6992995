// Shared machinery for the preload tests: where the built libgoalloc.so and goalloc-cli are,
// running a subprocess with a deadline (a hang fails the test instead of hanging it), compiling
// the C/C++ fixtures once per test process, and reading `goalloc: <Name> <N>` stats lines.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// MARK: - Locations

enum HarnessError: Error, CustomStringConvertible {
  case missing(String)
  case compileFailed(String)
  case launchFailed(String)

  var description: String {
    switch self {
    case .missing(let s): return s
    case .compileFailed(let s): return "compiling a fixture failed:\n\(s)"
    case .launchFailed(let s): return "could not start a process: \(s)"
    }
  }
}

enum Paths {
  /// The folder SwiftPM builds into (test bundle, executables and libgoalloc.so side by side).
  /// On Linux the test bundle (`goallocPackageTests.xctest`) is an executable run directly:
  /// /proc/self/exe, CommandLine.arguments[0] and Bundle.main.bundleURL all name it or its
  /// folder. /proc/self/exe is used (absolute, symlinks resolved), argv[0] is the fallback.
  static let buildFolder: URL = {
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
      return URL(fileURLWithPath: exe).deletingLastPathComponent().standardizedFileURL
    }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().standardizedFileURL
  }()

  static var library: URL { buildFolder.appendingPathComponent("libgoalloc.so") }

  /// The package root (this file is Tests/PreloadTests/Harness.swift): files that are not
  /// bundled as resources, such as Tests/Reliability, are found from here.
  static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
  static var cli: URL { buildFolder.appendingPathComponent("goalloc-cli") }

  /// The library, or an error that says how to build it.
  static func requireLibrary() throws -> URL {
    guard FileManager.default.isReadableFile(atPath: library.path) else {
      throw HarnessError.missing("\(library.path) not found; run `swift build` (the goalloc product) first")
    }
    return library
  }

  static func requireCLI() throws -> URL {
    guard FileManager.default.isExecutableFile(atPath: cli.path) else {
      throw HarnessError.missing("\(cli.path) not found; run `swift build` first")
    }
    return cli
  }

  /// The fixture sources shipped with this target (`resources: [.copy("Fixtures")]`).
  static func fixture(_ name: String) throws -> URL {
    guard let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
      throw HarnessError.missing("the Fixtures resource folder is missing from the test bundle")
    }
    let url = dir.appendingPathComponent(name)
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw HarnessError.missing("fixture \(name) not found in \(dir.path)")
    }
    return url
  }

  /// One scratch folder per test process, removed at exit.
  static let scratch: URL = {
    let url = FileManager.default.temporaryDirectory
      .appendingPathComponent("goalloc-preload-\(getpid())-\(UUID().uuidString.prefix(8))")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(at: Paths.scratch) }
    return url
  }()

  /// A new empty folder under the scratch folder.
  static func freshDirectory(_ label: String) throws -> URL {
    let url = scratch.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// `name` found on PATH (the first executable match), or nil.
  static func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
      let candidate = "\(dir)/\(name)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
  }

  static func requireTool(_ name: String) throws -> String {
    guard let p = which(name) else {
      throw HarnessError.missing("`\(name)` is not on PATH (Scripts/test.sh installs the tools these tests run)")
    }
    return p
  }
}

// MARK: - Running processes

struct ProcessResult: CustomStringConvertible {
  var command: [String]
  var status: Int32
  var reason: Process.TerminationReason
  var stdout: String
  var stderr: String
  var timedOut: Bool
  var seconds: Double

  var exitedCleanly: Bool { !timedOut && reason == .exit && status == 0 }
  var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty } }
  var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty } }

  /// stderr without the allocator's stats blocks (what the program itself wrote there).
  var stderrWithoutStats: [String] { stderrLines.filter { Stats.parseLine($0) == nil && Stats.parseHeading($0) == nil } }

  var description: String {
    let how = timedOut ? "TIMED OUT" : reason == .exit ? "exit \(status)" : "signal \(status)"
    func tail(_ s: String) -> String {
      let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
      return lines.suffix(40).joined(separator: "\n")
    }
    return """
      $ \(command.joined(separator: " "))
      -> \(how) after \(String(format: "%.2f", seconds)) s
      --- stdout (tail) ---
      \(tail(stdout))
      --- stderr (tail) ---
      \(tail(stderr))
      """
  }
}

/// What to put in front of a program: nothing, or libgoalloc.so with optional GOALLOC_DEBUG.
struct Preload: Sendable {
  var library: Bool
  var debug: String?
  /// The library to preload; nil: `Paths.library` (the one built beside the tests).
  var path: URL? = nil

  static let none = Preload(library: false, debug: nil)
  static let goalloc = Preload(library: true, debug: nil)
  static let goallocStats = Preload(library: true, debug: "stats=1")
  static func goalloc(debug: String) -> Preload { Preload(library: true, debug: debug) }
}

private final class ExitFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var done = false
  func set() { lock.lock(); done = true; lock.unlock() }
  var isSet: Bool { lock.lock(); defer { lock.unlock() }; return done }
}

enum Subprocess {
  /// Runs `executable` with `arguments`; stdout and stderr go to files (no pipe can fill up and
  /// block the child). After `timeout` seconds the process and all its descendants are killed
  /// and the result says `timedOut`. The environment is this process's without LD_PRELOAD,
  /// GOALLOC_DEBUG, GOALLOC_MEMLIMIT and GOALLOC_LIB, then `preload`, then `environment`.
  static func run(
    _ executable: String, _ arguments: [String] = [], preload: Preload = .none,
    environment: [String: String] = [:], directory: URL? = nil, stdin: URL? = nil,
    timeout: Double = 60
  ) async throws -> ProcessResult {
    let dir = try Paths.freshDirectory("run")
    let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: dir) }

    var env = ProcessInfo.processInfo.environment
    env["LD_PRELOAD"] = nil
    env["GOALLOC_DEBUG"] = nil
    env["GOALLOC_MEMLIMIT"] = nil
    env["GOALLOC_LIB"] = nil  // the CLI would preload it instead of the library beside the tests
    if preload.library { env["LD_PRELOAD"] = try (preload.path ?? Paths.requireLibrary()).path }
    if let d = preload.debug { env["GOALLOC_DEBUG"] = d }
    for (k, v) in environment { env[k] = v }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = env
    if let directory { process.currentDirectoryURL = directory }
    let outHandle = try FileHandle(forWritingTo: outURL)
    let errHandle = try FileHandle(forWritingTo: errURL)
    let inHandle = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = inHandle
    let exited = ExitFlag()
    process.terminationHandler = { _ in exited.set() }

    let start = ContinuousClock.now
    do {
      try process.run()
    } catch {
      throw HarnessError.launchFailed("\(executable): \(error)")
    }
    try? outHandle.close()
    try? errHandle.close()
    if stdin != nil { try? inHandle.close() }

    let pid = process.processIdentifier
    let deadline = start + .milliseconds(Int(timeout * 1000))
    var timedOut = false
    while !exited.isSet {
      if ContinuousClock.now >= deadline || Task.isCancelled {
        timedOut = true
        killTree(pid)
        break
      }
      try? await Task.sleep(for: .milliseconds(5))
    }
    if timedOut {
      let grace = ContinuousClock.now + .seconds(10)
      while !exited.isSet && ContinuousClock.now < grace { try? await Task.sleep(for: .milliseconds(20)) }
    }
    if exited.isSet { process.waitUntilExit() }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18

    let out = (try? Data(contentsOf: outURL)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    let err = (try? Data(contentsOf: errURL)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    return ProcessResult(
      command: [executable] + arguments,
      status: exited.isSet ? process.terminationStatus : -1,
      reason: exited.isSet ? process.terminationReason : .uncaughtSignal,
      stdout: out, stderr: err, timedOut: timedOut, seconds: seconds)
  }

  /// SIGKILLs `pid` and every process below it (found through /proc), children first found
  /// before anything is killed so none is re-parented away from the walk.
  static func killTree(_ pid: Int32) {
    var parentOf: [Int32: Int32] = [:]
    if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
      for e in entries {
        guard let p = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        // After "pid (comm) " come: state, ppid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 1, let ppid = Int32(fields[1]) { parentOf[p] = ppid }
      }
    }
    var tree: [Int32] = [pid]
    var i = 0
    while i < tree.count {
      let parent = tree[i]
      for (child, ppid) in parentOf where ppid == parent && !tree.contains(child) { tree.append(child) }
      i += 1
    }
    for p in tree { kill(p, SIGKILL) }
  }
}

// MARK: - Fixtures

/// Compiles each fixture once per test process into the scratch folder (concurrent requests
/// for the same fixture share one compilation).
/// A scenario fixture's verdict: it exited cleanly, printed at least n `ok ` lines and no `FAIL`.
func expectScenarioOK(_ r: ProcessResult, atLeast n: Int, sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(r.exitedCleanly, "\(r)", sourceLocation: sourceLocation)
  let ok = r.stdoutLines.filter { $0.hasPrefix("ok ") }.count
  #expect(ok >= n && !r.stdout.contains("FAIL"), "\(r)", sourceLocation: sourceLocation)
}

actor FixtureBuilder {
  static let shared = FixtureBuilder()
  private var builds: [String: Task<URL, any Error>] = [:]

  /// The executable built from `Fixtures/<source>` with cc (C) or c++ (C++):
  /// -O1 -pthread -fno-builtin (so malloc/free pairs are not optimised away), plus `flags`.
  func executable(_ source: String, flags: [String] = []) async throws -> URL {
    let isCxx = source.hasSuffix(".cpp")
    let name = ((source as NSString).deletingPathExtension) + (flags.isEmpty ? "" : "-\(builds.count)")
    return try await executable(name: name, source: try Paths.fixture(source), compiler: isCxx ? "c++" : "cc",
                                flags: ["-O1", "-pthread", "-fno-builtin", "-g"] + flags,
                                libraries: isCxx ? [] : ["-ldl"])
  }

  /// The executable `name` built from `src` by `compiler` (a name on PATH, or a path) with
  /// `flags`, linked with `libraries`; built once per process for each compiler, source and flags.
  /// A C fixture written against goalloc.h's own API (the GC mode, pools) and linked with
  /// libgoalloc.so: `Fixtures/<name>.c`, built as `executable(_:)` builds.
  func linkedToLibrary(_ name: String) async throws -> URL {
    let lib = try Paths.requireLibrary()
    let include = Paths.packageRoot.appendingPathComponent("include").path
    return try await executable(
      name: name, source: try Paths.fixture(name + ".c"), compiler: "cc",
      flags: ["-O1", "-pthread", "-fno-builtin", "-g", "-I", include],
      libraries: [lib.path, "-Wl,-rpath," + lib.deletingLastPathComponent().path, "-ldl"])
  }

  func executable(name: String, source src: URL, compiler: String, flags: [String],
                  libraries: [String] = []) async throws -> URL {
    let key = ([compiler, src.path] + flags + libraries).joined(separator: " ")
    if let t = builds[key] { return try await t.value }
    let t = Task<URL, any Error> {
      let cc = compiler.hasPrefix("/") ? compiler : try Paths.requireTool(compiler)
      let outDir = Paths.scratch.appendingPathComponent("bin")
      try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
      let out = outDir.appendingPathComponent(name)
      let r = try await Subprocess.run(cc, flags + ["-o", out.path, src.path] + libraries, timeout: 120)
      guard r.exitedCleanly else { throw HarnessError.compileFailed(r.description) }
      return out
    }
    builds[key] = t
    return try await t.value
  }
}

// MARK: - Stats

/// The blocks printed at exit under GOALLOC_DEBUG=stats=1, one per process: a heading
/// `goalloc: MemStats of pid <pid> (<command line>) at exit`, then `goalloc: <Name> <N>` lines.
enum Stats {
  /// The pid and command line of a block's heading line, or nil.
  static func parseHeading(_ line: String) -> (pid: Int32, command: String)? {
    let prefix = "goalloc: MemStats of pid "
    guard line.hasPrefix(prefix) else { return nil }
    let rest = line.dropFirst(prefix.count)
    let digits = rest.prefix { $0.isNumber }
    guard let pid = Int32(digits), rest.dropFirst(digits.count).hasPrefix(" ("),
          let open = rest.firstIndex(of: "("), let close = rest.lastIndex(of: ")") else { return nil }
    return (pid, String(rest[rest.index(after: open)..<close]))
  }

  /// Every heading in `stderr`, in order.
  static func headings(_ stderr: String) -> [(pid: Int32, command: String)] {
    stderr.split(separator: "\n").compactMap { parseHeading(String($0)) }
  }

  static func parseLine(_ line: String) -> (String, UInt64)? {
    guard line.hasPrefix("goalloc: ") else { return nil }
    let parts = line.dropFirst("goalloc: ".count).split(separator: " ")
    guard parts.count == 2, let v = UInt64(parts[1]), parts[0].allSatisfy({ $0.isLetter }) else { return nil }
    return (String(parts[0]), v)
  }

  /// The blocks in `stderr`; a block ends at a heading or where a name repeats.
  static func blocks(_ stderr: String) -> [[String: UInt64]] {
    var result: [[String: UInt64]] = []
    var current: [String: UInt64] = [:]
    for line in stderr.split(separator: "\n") {
      if parseHeading(String(line)) != nil, !current.isEmpty {
        result.append(current)
        current = [:]
      }
      guard let (k, v) = parseLine(String(line)) else { continue }
      if current[k] != nil {
        result.append(current)
        current = [:]
      }
      current[k] = v
    }
    if !current.isEmpty { result.append(current) }
    return result
  }
}

/// Checks that `r` printed stats (so GoAlloc served its allocations): at least `minBlocks`
/// blocks, at least one with Mallocs > 0, none with BadFrees != 0. Returns the blocks.
@discardableResult
func expectServedByGoAlloc(_ r: ProcessResult, blocks expected: ClosedRange<Int>? = nil,
                           sourceLocation: SourceLocation = #_sourceLocation) -> [[String: UInt64]] {
  let blocks = Stats.blocks(r.stderr)
  if let expected {
    #expect(expected.contains(blocks.count), "expected \(expected) stats blocks, got \(blocks.count)\n\(r)",
            sourceLocation: sourceLocation)
  }
  #expect(!blocks.isEmpty, "no `goalloc: Mallocs N` line in stderr\n\(r)", sourceLocation: sourceLocation)
  #expect(blocks.contains { ($0["Mallocs"] ?? 0) > 0 }, "no stats block with Mallocs > 0\n\(r)",
          sourceLocation: sourceLocation)
  for b in blocks {
    #expect(b["BadFrees"] == 0, "BadFrees \(b["BadFrees"].map(String.init) ?? "missing")\n\(r)",
            sourceLocation: sourceLocation)
    if let m = b["Mallocs"], let f = b["Frees"], let o = b["HeapObjects"] {
      #expect(m >= f && m - f == o, "HeapObjects \(o) != Mallocs \(m) - Frees \(f)", sourceLocation: sourceLocation)
    }
  }
  return blocks
}
