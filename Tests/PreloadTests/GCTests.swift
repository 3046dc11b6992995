// The GC mode (stage 1) through its C API: Fixtures/gc.c, linked with libgoalloc.so (and run
// under it), one scenario per process.
import Foundation
import Testing

@Suite("GC mode: collection through the C API")
struct GCTests {
  static func run(_ scenario: String, _ extra: [String] = [], environment: [String: String] = [:],
                  timeout: Double = 120) async throws -> ProcessResult {
    let lib = try Paths.requireLibrary()
    let include = Paths.packageRoot.appendingPathComponent("include").path
    let exe = try await FixtureBuilder.shared.executable(
      name: "gc", source: try Paths.fixture("gc.c"), compiler: "cc",
      flags: ["-O1", "-pthread", "-fno-builtin", "-g", "-I", include],
      libraries: [lib.path, "-Wl,-rpath," + lib.deletingLastPathComponent().path, "-ldl"])
    return try await Subprocess.run(exe.path, [scenario] + extra, preload: .goalloc, environment: environment,
                                    timeout: timeout)
  }

  static func expectAllOK(_ r: ProcessResult, atLeast n: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.exitedCleanly, "\(r)", sourceLocation: sourceLocation)
    let ok = r.stdoutLines.filter { $0.hasPrefix("ok ") }.count
    #expect(ok >= n && !r.stdout.contains("FAIL"), "\(r)", sourceLocation: sourceLocation)
  }

  @Test("kept from a global, a deep stack frame, another GC object, an uncollectable object, an added root, another thread's stack; reclaimed once dropped")
  func reachability() async throws {
    Self.expectAllOK(try await Self.run("reach"), atLeast: 18)
  }

  @Test("a noscan block full of pointers retains nothing; a scan block retains")
  func noscanHonesty() async throws { Self.expectAllOK(try await Self.run("noscan"), atLeast: 2) }

  @Test("interior pointers keep an object, one past the end does not; goalloc_gc_base")
  func interiorPointers() async throws { Self.expectAllOK(try await Self.run("interior"), atLeast: 4) }

  @Test("scan memory is zeroed when reused (small and large)")
  func zeroedOnReuse() async throws { Self.expectAllOK(try await Self.run("zero"), atLeast: 2) }

  @Test("free() and goalloc_gc_free of collected objects, realloc keeps kind, set_percent")
  func explicitFree() async throws { Self.expectAllOK(try await Self.run("free"), atLeast: 6) }

  @Test("a collection from a signal handler is refused with one line")
  func signalHandlerRefused() async throws {
    let r = try await Self.run("signal")
    Self.expectAllOK(r, atLeast: 2)
    #expect(r.stderr.contains("goalloc: gc: collection refused: called from a signal handler"), "\(r)")
  }

  @Test("stop-the-world torture: malloc/free loops, GC loops and a thread blocked in read while 200 collections run")
  func stopTheWorldTorture() async throws {
    Self.expectAllOK(try await Self.run("torture", ["200"], timeout: 120), atLeast: 4)
  }

  @Test("fork while other threads allocate and collect")
  func forkWhileAllocating() async throws { Self.expectAllOK(try await Self.run("fork"), atLeast: 1) }

  @Test("pacing: with live L at GOGC=100 the collected heap peaks near 2L")
  func pacing() async throws { Self.expectAllOK(try await Self.run("pacing"), atLeast: 2) }

  @Test("the memory limit triggers collections with GOGC off and holds the heap under it")
  func memoryLimit() async throws { Self.expectAllOK(try await Self.run("memlimit"), atLeast: 3) }

  @Test("GOALLOC_GC sets the percent; a malformed value warns and keeps 100")
  func percentFromEnvironment() async throws {
    let r = try await Self.run("percent", environment: ["GOALLOC_GC": "50"])
    #expect(r.exitedCleanly && r.stdoutLines == ["percent 50"], "\(r)")
    let off = try await Self.run("percent", environment: ["GOALLOC_GC": "off"])
    #expect(off.stdoutLines == ["percent -1"], "\(off)")
    let bad = try await Self.run("percent", environment: ["GOALLOC_GC": "lots"])
    #expect(bad.stdoutLines == ["percent 100"] && bad.stderr.contains("GOALLOC_GC must be a percent"), "\(bad)")
  }
}
