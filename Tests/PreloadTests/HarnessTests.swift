// The harness itself: a hung subprocess (a deadlock under the library) must fail its test at the
// deadline, with the whole process tree killed, instead of hanging the run.
import Foundation
import Testing

@Suite("test harness")
struct HarnessTests {
  @Test("a subprocess that hangs is killed, with its children, at its deadline")
  func timeoutKillsTree() async throws {
    let start = ContinuousClock.now
    let r = try await Subprocess.run("/bin/sh", ["-c", "sleep 60 & echo $!; exec sleep 60"], timeout: 1)
    #expect(r.timedOut, "\(r)")
    // Well before the 60 s sleep would end (a wide margin: CI machines can be very busy).
    #expect(ContinuousClock.now - start < .seconds(45), "\(r)")
    let grandchild = try #require(r.stdoutLines.first.flatMap { Int32($0) }, "\(r)")
    // Gone (or a zombie waiting for its new parent to reap it) shortly after.
    var alive = true
    for _ in 0..<100 where alive {
      let stat = try? String(contentsOfFile: "/proc/\(grandchild)/stat", encoding: .utf8)
      alive = stat.map { s in s.split(separator: ")").last.map { !$0.hasPrefix(" Z") && !$0.hasPrefix(" X") } ?? false } ?? false
      if alive { try await Task.sleep(for: .milliseconds(20)) }
    }
    #expect(!alive, "the background sleep (pid \(grandchild)) survived")
  }

  @Test("stats blocks are split per process")
  func statsBlocks() {
    let text = """
      goalloc: Mallocs 5
      goalloc: Frees 3
      goalloc: BadFrees 0
      some program output
      goalloc: free(): double free detected: 0x1234
      goalloc: Mallocs 7
      goalloc: Frees 7
      goalloc: BadFrees 1
      """
    let blocks = Stats.blocks(text)
    #expect(blocks.count == 2)
    #expect(blocks.first == ["Mallocs": 5, "Frees": 3, "BadFrees": 0])
    #expect(blocks.last == ["Mallocs": 7, "Frees": 7, "BadFrees": 1])
    #expect(Stats.parseLine("goalloc: free(): double free detected: 0x1234") == nil)
  }
}
