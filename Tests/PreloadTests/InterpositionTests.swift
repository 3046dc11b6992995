// How the preloaded library's symbols bind in programs that take the allocator's addresses.
import Foundation
import Testing

@Suite("symbol interposition")
struct InterpositionTests {
  @Test("a non-PIE program that takes free's and malloc's addresses loads without loader warnings")
  func nonPIE() async throws {
    let exe = try await FixtureBuilder.shared.executable("nopie.c", flags: ["-fno-pie", "-no-pie"])
    let plain = try await Subprocess.run(exe.path, preload: .none, timeout: 30)
    let r = try await Subprocess.run(exe.path, preload: .goalloc, timeout: 30)
    #expect(plain.exitedCleanly && plain.stdoutLines == ["free same", "malloc same", "done"], "\(plain)")
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdout == plain.stdout, "\(r)")
    // Reported: libgoalloc.so exports malloc, free, ... as STV_PROTECTED; glibc's ld.so then
    // warns "direct reference to protected function `free' ... may break pointer equality"
    // for every executable with a canonical PLT entry for them (gcc's cc1 among them).
    let protectedWarnings = r.stderrLines.filter { $0.contains("direct reference to protected function") }
    #expect(r.stderrLines.count == protectedWarnings.count, "\(r)")
    #expect(protectedWarnings.isEmpty, "\(r)")
  }
}
