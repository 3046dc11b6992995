// Calls in GoAllocCore run downwards through the tiers stated in docs/DESIGN.md:
// Scripts/check-tiers.py checks every file (run by .ci/run too); here `swift test` runs it.
import Foundation
import Testing

@Suite struct TierTests {
  @Test func callsRunDownwardsThroughTheTiers() throws {
    let script = EmbeddedMirrorTests.root.appendingPathComponent("Scripts/check-tiers.py").path
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let python else {
      Issue.record("python3 not found (Scripts/test.sh installs it)")
      return
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [script]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "\(text)")
  }
}
