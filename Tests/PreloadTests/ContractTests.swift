// contract.c: glibc's allocator contract checked from a C program, under libgoalloc.so, without
// it (the program itself is right), and with stats on (GoAlloc really served it).
import Foundation
import Testing

@Suite("glibc contract (contract.c)")
struct ContractTests {
  /// Every check contract.c runs, in order; each must print exactly one PASS line.
  static let checks = [
    "malloc_zero_unique", "calloc_overflow_enomem", "malloc_huge_enomem", "calloc_zeroed",
    "realloc_null_is_malloc", "realloc_keeps_prefix", "realloc_zero_frees",
    "reallocarray_overflow_enomem", "posix_memalign_einval", "posix_memalign_aligned",
    "aligned_small_sizes", "aligned_alloc_einval", "aligned_alloc_aligned", "memalign_aligned",
    "valloc_pvalloc_page_aligned", "usable_size", "alignment_16", "patterns_survive",
  ]

  /// Checks GoAlloc is known to fail today (reported; remove an entry once it is fixed: the
  /// test then reports "known issue was not recorded" until the entry goes).
  static let knownGoAllocFailures: [String: Comment] = [:]

  /// Checks the contract output: one line per check, all PASS (except `mayFail`/`maySkip`),
  /// the summary line, and an exit status that agrees with it.
  static func verify(_ r: ProcessResult, allocator: String, knownFailures: [String: Comment],
                     maySkip: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!r.timedOut && r.reason == .exit, "\(r)", sourceLocation: sourceLocation)
    let lines = r.stdoutLines
    #expect(lines.first == "allocator \(allocator)", "\(r)", sourceLocation: sourceLocation)
    var failed = 0, passed = 0
    for name in checks {
      let mine = lines.filter { $0 == "PASS \(name)" || $0.hasPrefix("FAIL \(name):") || $0.hasPrefix("SKIP \(name):") }
      #expect(mine.count == 1, "check \(name): \(mine.count) result lines\n\(r)", sourceLocation: sourceLocation)
      guard let line = mine.first else { continue }
      if line.hasPrefix("FAIL") { failed += 1 }
      if line.hasPrefix("PASS") { passed += 1 }
      if line.hasPrefix("SKIP") && maySkip.contains(name) { continue }
      if let known = knownFailures[name] {
        withKnownIssue(known) {
          #expect(line == "PASS \(name)", sourceLocation: sourceLocation)
        }
      } else {
        #expect(line == "PASS \(name)", sourceLocation: sourceLocation)
      }
    }
    #expect(lines.count == checks.count + 2, "unexpected output lines\n\(r)", sourceLocation: sourceLocation)
    #expect(lines.last == "contract: \(passed + failed) checks, \(failed) failures", "\(r)",
            sourceLocation: sourceLocation)
    #expect(r.status == (failed == 0 ? 0 : 1), "exit status disagrees with the checks\n\(r)",
            sourceLocation: sourceLocation)
  }

  @Test("contract holds under libgoalloc.so")
  func underGoAlloc() async throws {
    let exe = try await FixtureBuilder.shared.executable("contract.c")
    let r = try await Subprocess.run(exe.path, preload: .goalloc, timeout: 60)
    Self.verify(r, allocator: "goalloc", knownFailures: Self.knownGoAllocFailures)
    #expect(r.stderrLines.isEmpty, "nothing on stderr without GOALLOC_DEBUG\n\(r)")
  }

  @Test("contract.c passes on glibc's malloc (sanity)")
  func withoutLibrary() async throws {
    let exe = try await FixtureBuilder.shared.executable("contract.c")
    let r = try await Subprocess.run(exe.path, preload: .none, timeout: 60)
    // glibc before 2.38 rounds aligned_alloc's alignment up instead of failing.
    Self.verify(r, allocator: "system", knownFailures: [:], maySkip: ["aligned_alloc_einval"])
    #expect(r.stderrLines.isEmpty, "\(r)")
  }

  @Test("with GOALLOC_DEBUG=stats=1 the same run shows GoAlloc served it")
  func withStats() async throws {
    let exe = try await FixtureBuilder.shared.executable("contract.c")
    let r = try await Subprocess.run(exe.path, preload: .goallocStats, timeout: 60)
    Self.verify(r, allocator: "goalloc", knownFailures: Self.knownGoAllocFailures)
    let blocks = expectServedByGoAlloc(r, blocks: 1...1)
    // contract.c itself makes thousands of allocations.
    #expect((blocks.first?["Mallocs"] ?? 0) > 10_000, "\(r)")
    #expect(r.stderrWithoutStats.isEmpty, "only stats lines on stderr\n\(r)")
  }
}
