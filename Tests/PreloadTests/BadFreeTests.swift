// Bad frees (Tests/Reliability/limits_badfree.c): double, interior and wild frees, realloc and
// malloc_usable_size of pointers GoAlloc never handed out. By default each is reported in one line
// naming the call, the problem and the address, then the process aborts; with
// GOALLOC_DEBUG=badfree=warn it is reported, counted in BadFrees and ignored: live blocks stay
// intact, the heap checks out and the program goes on.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum BadCall: String, CaseIterable, Sendable, CustomTestStringConvertible {
  case doubleSmall = "double-small", doubleLarge = "double-large", doubleLargeFirst = "double-large-first"
  case doubleRemote = "double-remote", interiorSmall = "interior-small", interiorLarge = "interior-large"
  case interiorTail = "interior-tail", wildStack = "wild-stack", wildGlobal = "wild-global"
  case wildMmap = "wild-mmap", wildWindow = "wild-window", reallocInterior = "realloc-interior"
  case reallocInteriorLarge = "realloc-interior-large", reallocFreed = "realloc-freed"
  case usableInteriorSmall = "usable-interior-small", usableInteriorLarge = "usable-interior-large"
  case reallocFreedLarge = "realloc-freed-large", usableFreedLarge = "usable-freed-large"

  var testDescription: String {
    switch self {
    case .doubleSmall: return "double free of a 48-byte block"
    case .doubleLarge: return "double free of a large block"
    case .doubleLargeFirst: return "double free of the process's first large block"
    case .doubleRemote: return "double free, the first free on another thread"
    case .interiorSmall: return "free of p+16 of a 100-byte block"
    case .interiorLarge: return "free of p+8192 of a large block"
    case .interiorTail: return "free of the address after a span's last slot"
    case .wildStack: return "free of a stack address"
    case .wildGlobal: return "free of a global"
    case .wildMmap: return "free of someone else's mapping"
    case .wildWindow: return "free of someone else's mapping inside the heap window"
    case .reallocInterior: return "realloc of p+32 of a 256-byte block"
    case .reallocInteriorLarge: return "realloc of p+4096 of a large block"
    case .reallocFreed: return "realloc of a freed pointer"
    case .usableInteriorSmall: return "malloc_usable_size of p+16 of a 100-byte block"
    case .usableInteriorLarge: return "malloc_usable_size of p+4096 of a large block"
    case .reallocFreedLarge: return "realloc of a freed 100 000-byte block (in the thread's LargeBins)"
    case .usableFreedLarge: return "malloc_usable_size of a freed 100 000-byte block (in the thread's LargeBins)"
    }
  }

  /// The C function the diagnostic must name.
  var function: String {
    switch self {
    case .reallocInterior, .reallocInteriorLarge, .reallocFreed, .reallocFreedLarge: return "realloc"
    case .usableInteriorSmall, .usableInteriorLarge, .usableFreedLarge: return "malloc_usable_size"
    default: return "free"
    }
  }

  /// What the diagnostic must say.
  var problem: String {
    switch self {
    case .doubleSmall, .doubleLarge, .doubleLargeFirst, .doubleRemote, .reallocFreed: return "double free detected"
    // (A freed large block is no object at all, as it was in the LargeCache.)
    case .wildStack, .wildGlobal, .wildMmap, .wildWindow, .reallocFreedLarge, .usableFreedLarge:
      return "invalid pointer (not allocated by goalloc)"
    default: return "invalid pointer (interior pointer)"
    }
  }
}

extension ReliabilityTests {
  @Suite("bad frees (limits_badfree.c)")
  struct BadFrees {
    static func program() async throws -> URL { try await Reliability.program("limits_badfree.c") }

    /// The addresses limits_badfree.c handed to its bad calls ("addr 0x..." on stdout).
    static func announced(_ r: ProcessResult) -> [String] {
      r.stdoutLines.filter { $0.hasPrefix("addr 0x") }.map { String($0.dropFirst("addr ".count)) }
    }

    /// The one `goalloc: ` diagnostic of `r`: "goalloc: <function>(): <problem>: <address>".
    static func expectDiagnostic(_ r: ProcessResult, _ c: BadCall, sourceLocation: SourceLocation = #_sourceLocation) {
      #expect(r.stderrWithoutStats.count == 1, "exactly one line on stderr expected\n\(r)", sourceLocation: sourceLocation)
      let addresses = announced(r)
      #expect(addresses.count == 1, "one announced address expected\n\(r)", sourceLocation: sourceLocation)
      guard let line = r.stderrWithoutStats.first, let addr = addresses.first else { return }
      #expect(line == "goalloc: \(c.function)(): \(c.problem): \(addr)", "\(r)", sourceLocation: sourceLocation)
    }

    @Test("aborts after one diagnostic line naming the call, the problem and the address", arguments: BadCall.allCases)
    func aborts(_ c: BadCall) async throws {
      let r = try await Subprocess.run(try await Self.program().path, [c.rawValue], preload: try Reliability.preload(),
                                       timeout: 60)
      #expect(!r.timedOut, "\(r)")
      #expect(r.reason == .uncaughtSignal && r.status == SIGABRT, "expected SIGABRT\n\(r)")
      #expect(r.stdoutLines.last?.hasPrefix("addr ") == true, "must stop at the bad call\n\(r)")
      Self.expectDiagnostic(r, c)
    }

    @Test("badfree=warn: reported, counted in BadFrees and ignored; live blocks intact, heap consistent",
          arguments: BadCall.allCases)
    func warns(_ c: BadCall) async throws {
      let r = try await Subprocess.run(try await Self.program().path, [c.rawValue],
                                       preload: try Reliability.preload(debug: "badfree=warn,stats=1"), timeout: 60)
      #expect(r.exitedCleanly, "\(r)")
      #expect(r.stdoutLines.last == "limits_badfree \(c.rawValue): continued, heap consistent", "\(r)")
      Self.expectDiagnostic(r, c)
      let blocks = Stats.blocks(r.stderr)
      #expect(blocks.count == 1 && blocks.first?["BadFrees"] == 1, "\(r)")
      #expect((blocks.first?["Mallocs"] ?? 0) > 0, "\(r)")
    }

    @Test("badfree=warn: every kind of bad call in one process, each reported and counted")
    func allInOneProcess() async throws {
      let r = try await Subprocess.run(try await Self.program().path, ["all"],
                                       preload: try Reliability.preload(debug: "badfree=warn,stats=1"), timeout: 60)
      #expect(r.exitedCleanly, "\(r)")
      #expect(r.stdoutLines.last == "limits_badfree all: continued, heap consistent", "\(r)")
      #expect(Self.announced(r).count == BadCall.allCases.count, "\(r)")
      #expect(r.stderrWithoutStats.count == BadCall.allCases.count, "\(r)")
      #expect(Stats.blocks(r.stderr).first?["BadFrees"] == UInt64(BadCall.allCases.count), "\(r)")
      Reliability.say("bad frees: \(BadCall.allCases.count) kinds of bad free/realloc/malloc_usable_size caught")
    }

    @Test("glibc's malloc also rejects the double free (the program really makes one)")
    func glibcAlsoAborts() async throws {
      let r = try await Subprocess.run(try await Self.program().path, [BadCall.doubleSmall.rawValue], timeout: 60)
      #expect(r.reason == .uncaughtSignal && r.status == SIGABRT, "\(r)")
      #expect(!r.stderr.contains("goalloc"), "\(r)")
    }
  }
}
