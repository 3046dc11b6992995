import Foundation
import Testing

/// The scavenger under the drop-in library: memory goes back to the OS by itself, and a memory
/// limit holds.
@Suite("scavenger (libgoalloc.so)")
struct ScavengerPreloadTests {
  @Test("after freeing 128 MiB of small and large objects, RSS falls back on its own")
  func rssFallsAfterFree() async throws {
    let exe = try await FixtureBuilder.shared.executable("rssdrop.c")
    let r = try await Subprocess.run(exe.path, preload: .goallocStats, timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.first?.hasPrefix("rss start=") == true, "\(r)")
    expectServedByGoAlloc(r, blocks: 1...1)
  }

  @Test("a process whose main thread leaves by pthread_exit still ends (the scavenger thread leaves too), also in a fork child")
  func scavengerDoesNotKeepTheProcessAlive() async throws {
    let exe = try await FixtureBuilder.shared.executable("mainexit.c")
    let r = try await Subprocess.run(exe.path, preload: .goalloc, timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines == ["child ended"], "\(r)")
  }

  @Test("GOALLOC_MEMLIMIT=160MiB keeps RSS near the limit on a workload whose live set fits")
  func memoryLimitHolds() async throws {
    let exe = try await FixtureBuilder.shared.executable("memlimit.c")
    let r = try await Subprocess.run(exe.path, ["3000"], preload: .goallocStats,
                                     environment: ["GOALLOC_MEMLIMIT": "160MiB"], timeout: 120)
    #expect(r.exitedCleanly, "\(r)")
    let line = try #require(r.stdoutLines.first { $0.hasPrefix("memlimit ") }, "\(r)")
    let peak = Int(line.split(separator: "=").last!.split(separator: " ").first!) ?? .max
    #expect(peak <= 160 + 24, "peak RSS \(peak) MiB over a 160 MiB limit\n\(r)")
    expectServedByGoAlloc(r, blocks: 1...1)
  }
}
