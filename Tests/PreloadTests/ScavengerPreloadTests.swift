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

  /// memlimit.c's peak RSS (MiB) over `rounds` replaces under GOALLOC_MEMLIMIT=`limit`.
  func memlimitPeak(limit: String, rounds: Int) async throws -> (peak: Int, result: String) {
    let exe = try await FixtureBuilder.shared.executable("memlimit.c")
    let r = try await Subprocess.run(exe.path, ["\(rounds)"], preload: .goallocStats,
                                     environment: ["GOALLOC_MEMLIMIT": limit], timeout: 300)
    #expect(r.exitedCleanly, "\(r)")
    expectServedByGoAlloc(r, blocks: 1...1)
    let line = try #require(r.stdoutLines.first { $0.hasPrefix("memlimit ") }, "\(r)")
    return (Int(line.split(separator: "=").last!.split(separator: " ").first!) ?? .max, "\(r)")
  }

  @Test("GOALLOC_MEMLIMIT=160MiB keeps RSS near the limit on a workload whose live set fits")
  func memoryLimitHolds() async throws {
    let (peak, result) = try await memlimitPeak(limit: "160MiB", rounds: 3000)
    #expect(peak <= 160 + 24, "peak RSS \(peak) MiB over a 160 MiB limit\n\(result)")
  }

  @Test("GOALLOC_MEMLIMIT=68MiB holds within 10 % while the live blocks fill up to 94 % of it")
  func memoryLimitHoldsWithLiveDataCloseToIt() async throws {
    // memlimit.c keeps up to 64 MiB live. Measured: 67-71 MiB RSS at its peak (1500 replaces:
    // 2.8 s alone); 67-90 when the mode stopped at live objects of 15/16 of the limit.
    let (peak, result) = try await memlimitPeak(limit: "68MiB", rounds: 1500)
    #expect(peak <= 74, "peak RSS \(peak) MiB over a 68 MiB limit\n\(result)")
  }

  /// memchurn's peak - base in KiB: its VmHWM at the end over the program's own memory.
  func churn(limit: String?, order: String = "random") async throws -> (added: Int, result: String) {
    let exe = try await FixtureBuilder.shared.executable("memchurn.c")
    let r = try await Subprocess.run(exe.path, ["40", "6", order], preload: .goallocStats,
                                     environment: limit.map { ["GOALLOC_MEMLIMIT": $0] } ?? [:], timeout: 120)
    #expect(r.exitedCleanly, "\(r)")
    expectServedByGoAlloc(r, blocks: 1...1)
    let line = try #require(r.stdoutLines.first { $0.hasPrefix("memchurn ") }, "\(r)")
    func field(_ name: String) -> Int? {
      line.split(separator: " ").first { $0.hasPrefix(name + "=") }.flatMap { Int($0.dropFirst(name.count + 1)) }
    }
    let base = try #require(field("base_kib"), "\(line)"), peak = try #require(field("peak_kib"), "\(line)")
    return (peak - base, "\(r)")
  }

  @Test("GOALLOC_MEMLIMIT=64MiB holds within 10 % on 40 MiB of small objects freed and reallocated in a shifting size mix")
  func memoryLimitHoldsOnSmallObjectChurn() async throws {
    // Measured (2-CPU VM): 70.1-70.3 MiB over the program's own memory with the limit (VmHWM),
    // 104-106 MiB without. 10 % over 64 MiB is 72090 KiB.
    let limited = try await churn(limit: "64MiB")
    #expect(limited.added <= 72090, "added \(limited.added) KiB under a 64 MiB limit\n\(limited.result)")
    let unlimited = try await churn(limit: nil)
    #expect(limited.added + 20 << 10 <= unlimited.added,
            "added \(limited.added) KiB with the limit, \(unlimited.added) KiB without\n\(unlimited.result)")
  }

  @Test("GOALLOC_MEMLIMIT=64MiB holds within 10 % when the spans of a size going out of use empty whole")
  func memoryLimitHoldsWhenSpansEmpty() async throws {
    // memchurn's fifo order: objects die in allocation order, so a size mix's spans empty whole and
    // go back to the heap at once near the limit. Measured: 53.5 MiB over the program's own memory
    // with the limit, 106 without (glibc 51, mimalloc 46, no limit).
    let limited = try await churn(limit: "64MiB", order: "fifo")
    #expect(limited.added <= 70 << 10, "added \(limited.added) KiB under a 64 MiB limit\n\(limited.result)")
  }
}
