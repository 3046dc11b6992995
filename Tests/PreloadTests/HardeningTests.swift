// What an attacker with a linear overflow or a write after free can do to the free lists'
// metadata (Fixtures/hardening.c): every attack ends in "heap corruption detected" (SIGABRT) or
// gives nothing, never an aliased or foreign block. Against the allocator before the hardening,
// the same program got aliased blocks or crashes in the exit flush.
import Foundation
import Testing

@Suite("hardening: free-list metadata an overflow cannot steer")
struct HardeningTests {
  static let message = "goalloc: heap corruption detected: "

  func run(_ args: [String], debug: String? = nil) async throws -> ProcessResult {
    let exe = try await FixtureBuilder.shared.executable("hardening.c")
    return try await Subprocess.run(exe.path, args, preload: debug.map { .goalloc(debug: $0) } ?? .goalloc, timeout: 120)
  }

  @Test("each attack aborts with the corruption line before the block it names is handed out",
        arguments: ["overflow", "uaf", "exitflush", "listflush"])
  func attackIsDetected(_ scenario: String) async throws {
    // badfree=warn does not let corruption through: going on would hand out a chosen address.
    for debug in [nil, "badfree=warn"] as [String?] {
      let r = try await run([scenario], debug: debug)
      #expect(r.reason == .uncaughtSignal && r.status == SIGABRT, "\(r)")
      #expect(!r.stdout.contains("ALIASED") && !r.stdout.contains("not steered"), "\(r)")
      let lines = r.stderrLines.filter { $0.hasPrefix(Self.message) }
      #expect(lines.count == 1, "one line naming the corruption\n\(r)")
    }
  }

  @Test("another thread's frees go back to their spans: a write into them afterwards steers nothing")
  func remoteFreesAreNotListed() async throws {
    for debug in [nil, "badfree=warn"] as [String?] {
      let r = try await run(["remote"], debug: debug)
      #expect(r.exitedCleanly && r.stdoutLines.last == "not steered", "\(r)")
      #expect(!r.stdout.contains("FOREIGN") && !r.stderr.contains(Self.message), "\(r)")
    }
  }

  @Test("every one-byte change of a freed object's link is detected")
  func oneByteChanges() async throws {
    let r = try await run(["bytes"])
    #expect(r.exitedCleanly, "\(r)")
    // Changes in the link's low 3 bits are caught always; the others with probability 1 - 2^-17
    // each (a one-in-4000 chance that one of the 31 such values in this run slips through).
    #expect(r.stdoutLines.last == "bytes: detected=255 undetected=0 aliased=0 other=0", "\(r)")
  }

  @Test("stray writes to word 1 of freed objects are ignored, and later double frees still caught")
  func wordOneIsNotTrusted() async throws {
    let r = try await run(["word1"])
    #expect(r.stdoutLines.contains("word1 ok; now a double free"), "\(r)")
    #expect(!r.stdout.contains("ALIASED") && !r.stdout.contains("NOT detected"), "\(r)")
    #expect(r.reason == .uncaughtSignal && r.status == SIGABRT, "\(r)")
    #expect(r.stderrLines.contains { $0.hasPrefix("goalloc: free(): double free detected: 0x") }, "\(r)")
    #expect(!r.stderr.contains(Self.message), "\(r)")
  }

  @Test("fuzz: random bytes written into freed objects never yield an aliased or foreign block")
  func fuzzWritesAfterFree() async throws {
    let r = try await run(["fuzz", "60"])
    #expect(r.exitedCleanly, "\(r)")
    let line = try #require(r.stdoutLines.last, "\(r)")
    #expect(line.hasPrefix("fuzz: children=60 ") && line.hasSuffix(" aliased_or_foreign=0 other=0"), "\(r)")
  }

  @Test("GOALLOC_SECURE=1: quarantine, random slot order, guard pages; attacks still give nothing")
  func secureMode() async throws {
    let exe = try await FixtureBuilder.shared.executable("hardening.c")
    let secure = ["GOALLOC_SECURE": "1"]
    let r = try await Subprocess.run(exe.path, ["secure"], preload: .goalloc, environment: secure, timeout: 120)
    #expect(r.reason == .uncaughtSignal && r.status == SIGSEGV, "the guard page faults\n\(r)")
    let line = try #require(r.stdoutLines.first { $0.hasPrefix("secure: reused=") }, "\(r)")
    #expect(line.hasPrefix("secure: reused=0 "), "a freed block comes back at once\n\(r)")
    let ascending = Int(line.split(separator: " ")[2].dropFirst("ascending=".count)) ?? 200
    #expect(ascending < 40, "allocations in address order\n\(r)")
    #expect(!r.stdout.contains("NOT faulted"), "\(r)")
    // The default heap: immediate reuse, address order, no guard (the figures the test relies on).
    let d = try await Subprocess.run(exe.path, ["secure"], preload: .goalloc, timeout: 120)
    #expect(d.stdout.contains("secure: reused=1000 ") && d.stdout.contains("NOT faulted"), "\(d)")
    for scenario in ["overflow", "uaf", "exitflush", "listflush", "remote"] {
      let a = try await Subprocess.run(exe.path, [scenario], preload: .goalloc, environment: secure, timeout: 120)
      #expect(!a.stdout.contains("ALIASED"), "\(a)")
      #expect(a.exitedCleanly || (a.reason == .uncaughtSignal && a.status == SIGABRT && a.stderr.contains(Self.message)), "\(a)")
    }
  }
}
