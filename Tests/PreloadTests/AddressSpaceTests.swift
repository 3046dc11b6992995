// The heap's address space seen from programs (addrspace.c, ls, python3): a random base per
// process (Go's fixed one with GOALLOC_DEBUG=fixedheap=1), programs that run under a tight
// `ulimit -v`, at least 90 % of an address-space limit usable, and huge alignments that leave
// nothing mapped behind them.
import Foundation
import Testing

@Suite("address space: random base, ulimit -v, huge alignments (addrspace.c)")
struct AddressSpaceTests {
  struct Base { var early: UInt; var environAtEarly: Bool; var first: UInt; var vmsize: Int }

  static func base(_ debug: String?) async throws -> Base {
    let exe = try await FixtureBuilder.shared.executable("addrspace.c")
    let r = try await Subprocess.run(exe.path, ["base"], preload: debug.map { .goalloc(debug: $0) } ?? .goalloc,
                                     timeout: 30)
    #expect(r.exitedCleanly && r.stdoutLines.first == "allocator goalloc", "\(r)")
    func hex(_ s: Substring?) -> UInt? { s.flatMap { UInt($0.dropFirst(2), radix: 16) } }
    let early = r.stdoutLines.first { $0.hasPrefix("early ") }?.split(separator: " ")
    let first = r.stdoutLines.first { $0.hasPrefix("first ") }?.split(separator: " ").last
    let vm = r.stdoutLines.first { $0.hasPrefix("vmsize ") }?.split(separator: " ").last.flatMap { Int($0) }
    return Base(early: try #require(hex(early?[1]), "\(r)"), environAtEarly: early?.last == "set",
                first: try #require(hex(first), "\(r)"), vmsize: try #require(vm, "\(r)"))
  }

  @Test("two processes get different random heap bases, away from Go's 0xc000000000; fixedheap=1 gives 0xc000000000, also for a malloc before libc has set environ up")
  func randomBase() async throws {
    let a = try await Self.base(nil), b = try await Self.base(nil)
    for p in [a.early, a.first, b.early, b.first] {
      #expect(p >= 1 << 40 && p < 64 << 40, "0x\(String(p, radix: 16)) is outside [1 TiB, 64 TiB)")
    }
    #expect(a.first != b.first && a.early != b.early, "both heaps at 0x\(String(a.first, radix: 16))")
    let fixed = try await Self.base("fixedheap=1")
    #expect(!fixed.environAtEarly, "the early malloc came after libc's start-up: this test proves less")
    for p in [fixed.early, fixed.first] {
      #expect(p >= 0xc0_0000_0000 && p < 0xc0_0000_0000 + (4 << 20), "fixedheap=1: an object at 0x\(String(p, radix: 16))")
    }
  }

  @Test("a small program maps a few MiB, not hundreds (VmSize with and without the library)")
  func smallStart() async throws {
    let exe = try await FixtureBuilder.shared.executable("addrspace.c")
    let plain = try await Subprocess.run(exe.path, ["base"], timeout: 30)
    let glibc = try #require(plain.stdoutLines.first { $0.hasPrefix("vmsize ") }.flatMap { Int($0.dropFirst(7)) })
    let ours = try await Self.base(nil).vmsize
    // The library's code, the heap's first 4 MiB step and under 1 MiB of metadata (was 211 MiB).
    #expect(ours - glibc < 8 << 10, "VmSize \(ours) KiB under the library, \(glibc) KiB under glibc")
  }

  /// `command` run by /bin/sh under `ulimit -v KIB`, with the library preloaded (sh included).
  static func underLimit(_ kib: Int, _ command: String, preload: Preload = .goalloc) async throws -> ProcessResult {
    try await Subprocess.run("/bin/sh", ["-c", "ulimit -v \(kib) && exec \(command)"], preload: preload, timeout: 120)
  }

  @Test("ls and python3 run under ulimit -v 150000")
  func toolsUnderTightLimit() async throws {
    let ls = try await Self.underLimit(150_000, "ls /")
    #expect(ls.exitedCleanly && ls.stdoutLines.contains("usr"), "\(ls)")
    let python = try Paths.requireTool("python3")
    let py = try await Self.underLimit(150_000, "\(python) -c 'print(6 * 7)'")
    #expect(py.exitedCleanly && py.stdoutLines == ["42"], "\(py)")
  }

  @Test("at least 90 % of ulimit -v 300000 can be allocated in 1 MiB blocks", arguments: [true, false])
  func fillUnderLimit(goalloc: Bool) async throws {
    let exe = try await FixtureBuilder.shared.executable("addrspace.c")
    let r = try await Self.underLimit(300_000, "\(exe.path) fill", preload: goalloc ? .goalloc : .none)
    let line = try #require(r.stdoutLines.first { $0.hasPrefix("fill ") }, "\(r)")
    let parts = line.split(separator: " ")
    let got = try #require(Int(parts[1])), limit = try #require(Int(parts[3]))
    #expect(r.exitedCleanly, "\(r)")
    #expect(got * 10 >= limit * 9, "\(goalloc ? "goalloc" : "glibc"): \(line)")
  }

  @Test("memalign(1 << 32, 1) maps its own size, and free leaves nothing of the alignment mapped")
  func hugeAlignment() async throws {
    let exe = try await FixtureBuilder.shared.executable("addrspace.c")
    let r = try await Subprocess.run(exe.path, ["memalign"], preload: .goalloc, timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    let f = try #require(r.stdoutLines.first { $0.hasPrefix("memalign ") }, "\(r)").split(separator: " ")
    let before = try #require(Int(f[3])), after = try #require(Int(f[5])), freed = try #require(Int(f[7]))
    // Was +4 GiB (the whole alignment, mapped for good); now the span and a little metadata.
    #expect(after - before < 2 << 10 && freed - before < 2 << 10, "VmSize \(before) -> \(after) -> \(freed) KiB")
  }
}
