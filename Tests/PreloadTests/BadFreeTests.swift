// badfree.c: invalid frees are reported in one line naming the problem and the address, then
// abort (default) or are counted and ignored (GOALLOC_DEBUG=badfree=warn).
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum BadFreeCase: String, CaseIterable, Sendable, CustomTestStringConvertible {
  case double, stack, interior, realloc

  var testDescription: String {
    switch self {
    case .double: return "double free"
    case .stack: return "free of a stack address"
    case .interior: return "free of an interior pointer (p+8 of a 64-byte block)"
    case .realloc: return "realloc of a freed pointer"
    }
  }

  /// The C function the diagnostic must name.
  var function: String { self == .realloc ? "realloc" : "free" }

  /// Words the diagnostic must contain (any one of them).
  var problem: [String] {
    switch self {
    case .double: return ["double free"]
    case .stack: return ["invalid pointer"]
    case .interior: return ["invalid pointer (interior pointer)"]
    case .realloc: return ["double free", "invalid pointer"]
    }
  }
}

@Suite("invalid frees (badfree.c)")
struct BadFreeTests {
  /// The address badfree.c handed to the bad call ("addr 0x..." on stdout).
  static func announcedAddress(_ r: ProcessResult) -> String? {
    r.stdoutLines.first { $0.hasPrefix("addr 0x") }.map { String($0.dropFirst("addr ".count)) }
  }

  /// The one `goalloc: ` diagnostic line of `r`, checked against `c` and the announced address.
  static func expectDiagnostic(_ r: ProcessResult, _ c: BadFreeCase, sourceLocation: SourceLocation = #_sourceLocation) {
    let lines = r.stderrWithoutStats.filter { $0.hasPrefix("goalloc: ") }
    #expect(lines.count == 1, "exactly one goalloc line expected\n\(r)", sourceLocation: sourceLocation)
    #expect(r.stderrWithoutStats.count == lines.count, "other lines on stderr\n\(r)", sourceLocation: sourceLocation)
    guard let line = lines.first, let addr = announcedAddress(r) else {
      Issue.record("no diagnostic or no announced address\n\(r)", sourceLocation: sourceLocation)
      return
    }
    #expect(line.hasPrefix("goalloc: \(c.function)(): "), "\(line)", sourceLocation: sourceLocation)
    #expect(c.problem.contains { line.contains($0) }, "\(line) should say \(c.problem)", sourceLocation: sourceLocation)
    #expect(line.hasSuffix(": \(addr)"), "\(line) should end with the address \(addr)", sourceLocation: sourceLocation)
    let hex = addr.dropFirst(2)
    #expect(addr.hasPrefix("0x") && !hex.isEmpty && hex.allSatisfy(\.isHexDigit), sourceLocation: sourceLocation)
  }

  @Test("aborts with one diagnostic line", arguments: BadFreeCase.allCases)
  func aborts(_ c: BadFreeCase) async throws {
    let exe = try await FixtureBuilder.shared.executable("badfree.c")
    let r = try await Subprocess.run(exe.path, [c.rawValue], preload: .goalloc, timeout: 30)
    #expect(!r.timedOut, "\(r)")
    #expect(r.reason == .uncaughtSignal && r.status == SIGABRT, "expected SIGABRT\n\(r)")
    #expect(r.stdoutLines.count == 1 && Self.announcedAddress(r) != nil, "must stop at the bad call\n\(r)")
    Self.expectDiagnostic(r, c)
  }

  @Test("badfree=warn prints the line and goes on", arguments: BadFreeCase.allCases)
  func warns(_ c: BadFreeCase) async throws {
    let exe = try await FixtureBuilder.shared.executable("badfree.c")
    let r = try await Subprocess.run(exe.path, [c.rawValue], preload: .goalloc(debug: "badfree=warn"), timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.count == 2 && r.stdoutLines.last == "after", "\(r)")
    Self.expectDiagnostic(r, c)
  }

  @Test("badfree=warn,stats=1 counts it in BadFrees", arguments: BadFreeCase.allCases)
  func counts(_ c: BadFreeCase) async throws {
    let exe = try await FixtureBuilder.shared.executable("badfree.c")
    let r = try await Subprocess.run(exe.path, [c.rawValue], preload: .goalloc(debug: "badfree=warn,stats=1"),
                                     timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.last == "after", "\(r)")
    Self.expectDiagnostic(r, c)
    let blocks = Stats.blocks(r.stderr)
    #expect(blocks.count == 1, "\(r)")
    #expect(blocks.first?["BadFrees"] == 1, "\(r)")
    #expect((blocks.first?["Mallocs"] ?? 0) > 0, "\(r)")
  }

  @Test("glibc's malloc also rejects the double free (the fixture really does one)")
  func glibcAlsoAborts() async throws {
    let exe = try await FixtureBuilder.shared.executable("badfree.c")
    let r = try await Subprocess.run(exe.path, ["double"], preload: .none, timeout: 30)
    #expect(r.reason == .uncaughtSignal && r.status == SIGABRT, "\(r)")
    #expect(!r.stderr.contains("goalloc"), "\(r)")
  }
}
