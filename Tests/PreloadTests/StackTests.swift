// Call stacks taken inside the allocator: whole stacks from a stock Debian binary built without
// frame pointers (sqlite3), and no allocation by the unwinder (unwind_nomalloc.c interposes
// malloc and counts the calls libgcc_s makes).
import Foundation
import Testing

@Suite("call stacks: DWARF unwinding through the allocator")
struct StackTests {
  /// Frames per event of a trace (`a tid addr size class pcs...`, `f tid addr pcs...`).
  static func depths(_ trace: String) -> [Int] {
    trace.split(separator: "\n").compactMap { line -> Int? in
      let f = line.split(separator: " ")
      if f.first == "a" { return f.count - 5 }
      if f.first == "f" { return f.count - 3 }
      return nil
    }
  }

  @Test("a --stacks trace of sqlite3 (no frame pointers) has whole stacks, not one frame")
  func sqliteDepth() async throws {
    let sqlite = try Paths.requireTool("sqlite3")
    let dir = try Paths.freshDirectory("sqlite-stacks")
    let trace = dir.appendingPathComponent("t.trace")
    let sql = "create table t(a, b); insert into t select value, randomblob(100) from generate_series(1, 2000); "
      + "create index i on t(b); select count(*), sum(length(b)) from t;"
    let r = try await Subprocess.run(sqlite, [":memory:", sql],
                                     preload: .goalloc(debug: "allocfreetrace=\(trace.path),tracestack=1"), timeout: 120)
    #expect(r.exitedCleanly && r.stdoutLines == ["2000|200000"], "\(r)")
    let d = Self.depths(try String(contentsOf: trace, encoding: .utf8)).sorted()
    try #require(d.count > 2000, "\(d.count) events")
    let shallow = d.filter { $0 <= 1 }.count
    let median = d[d.count / 2]
    // Measured: before DWARF unwinding every event had one frame; now the median is 13.
    #expect(shallow * 100 < d.count, "\(shallow) of \(d.count) events have at most one frame")
    #expect(median >= 8, "median depth \(median)")
  }

  @Test("the unwinder allocates nothing, in any thread, also after a dlopen")
  func unwinderDoesNotAllocate() async throws {
    let exe = try await FixtureBuilder.shared.executable("unwind_nomalloc.c")
    let dir = try Paths.freshDirectory("unwind")
    let trace = dir.appendingPathComponent("t.trace"), prof = dir.appendingPathComponent("heap.prof")
    let r = try await Subprocess.run(exe.path, preload: .goalloc(
      debug: "allocfreetrace=\(trace.path),tracestack=1,memprofile=\(prof.path),memprofilerate=1"), timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.contains("unwinder mallocs 0"), "\(r)")
    #expect(r.stdoutLines.contains("own allocations 2000"), "\(r)")
    // The program's own allocations come from deep(): depth 0..8, then main or a thread.
    let d = Self.depths(try String(contentsOf: trace, encoding: .utf8))
    #expect(d.filter { $0 >= 4 }.count >= 2000, "\(d.filter { $0 >= 4 }.count) events with 4 frames or more")
  }
}
