// Multithreaded C (threads.c), fork() under load (forktest.c) and C++ (cpp.cpp) under
// libgoalloc.so with stats on.
import Foundation
import Testing

@Suite("C/C++ programs under load")
struct StressTests {
  @Test("threads.c: 8 threads, cross-thread frees, 200 short-lived threads, heap check")
  func threads() async throws {
    let exe = try await FixtureBuilder.shared.executable("threads.c")
    let r = try await Subprocess.run(exe.path, preload: .goallocStats, timeout: 120)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines == [
      "threads: ok ops=400000 threads=208 cross_frees=many orphans=yes exchange=yes heap=consistent errors=0",
    ], "\(r)")
    #expect(r.stderrWithoutStats.isEmpty, "\(r)")
    let blocks = expectServedByGoAlloc(r, blocks: 1...1)
    #expect((blocks.first?["Mallocs"] ?? 0) > 100_000, "\(r)")
  }

  @Test("forktest.c: 50 forks while 4 threads allocate; children allocate and exit")
  func forkUnderLoad() async throws {
    let exe = try await FixtureBuilder.shared.executable("forktest.c")
    let r = try await Subprocess.run(exe.path, preload: .goallocStats, timeout: 150)
    #expect(!r.timedOut, "deadlock: the fork test did not finish\n\(r)")
    #expect(r.reason == .exit, "killed by a signal (SIGALRM is the program's own deadlock alarm)\n\(r)")
    let line = try #require(r.stdoutLines.last, "\(r)")
    let fields = Dictionary(uniqueKeysWithValues: line.split(separator: " ").dropFirst(2).compactMap { f -> (String, Int)? in
      let kv = f.split(separator: "=")
      guard kv.count == 2, let v = Int(kv[1]) else { return nil }
      return (String(kv[0]), v)
    })
    #expect(line.hasPrefix("fork: "), "\(r)")
    #expect(fields["children"] == 50 && fields["workers"] == 4, "\(r)")
    let failures = try #require(fields["failures"], "\(r)")
    let heapCheckFailures = try #require(fields["heap_check_failures"], "\(r)")
    // Deadlocks, signals and corrupted objects are never acceptable.
    #expect(failures - heapCheckFailures == 0, "children failed other than by the heap check\n\(r)")
    // Reported: goalloc_check_heap() finds "flags disagree with the list" (now and then
    // "allocCount disagrees with allocBits") in many children right after fork. It reports the
    // same on the live heap while other threads allocate, so an in-flight span transition is
    // seen as broken; in a fork child that transition never completes.
    #expect(heapCheckFailures == 0, "\(r)")
    #expect(r.status == 0 && line.hasPrefix("fork: ok"), "\(r)")
    if failures == heapCheckFailures && failures > 0 {
      #expect(r.status == 1, "\(r)")
    }
    let unexpected = r.stderrWithoutStats.filter {
      !($0.hasPrefix("goalloc: check_heap(): ") || ($0.hasPrefix("fork: child ") && $0.hasSuffix(" exited with status 4")))
    }
    #expect(unexpected.isEmpty, "\(r)")
    // Children _exit() (no stats); the parent prints one block.
    expectServedByGoAlloc(r, blocks: 1...1)
  }

  @Test("cpp.cpp: new/delete and the standard containers")
  func cpp() async throws {
    let exe = try await FixtureBuilder.shared.executable("cpp.cpp")
    async let plainRun = Subprocess.run(exe.path, preload: .none, timeout: 60)
    let r = try await Subprocess.run(exe.path, preload: .goallocStats, timeout: 60)
    let plain = try await plainRun
    #expect(plain.exitedCleanly, "\(plain)")
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.count == 6, "\(r)")
    #expect(r.stdoutLines.last == "cpp: ok", "\(r)")
    #expect(r.stdoutLines.contains { $0.hasPrefix("maps ") && $0.hasSuffix(" size 15000") }, "\(r)")
    #expect(r.stdout == plain.stdout, "output differs from the run on glibc's malloc\n\(r)\n\(plain)")
    #expect(r.stderrWithoutStats.isEmpty, "\(r)")
    let blocks = expectServedByGoAlloc(r, blocks: 1...1)
    #expect((blocks.first?["Mallocs"] ?? 0) > 300_000, "\(r)")
  }
}
