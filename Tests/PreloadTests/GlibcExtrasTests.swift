// The rest of glibc's allocator interface and C++'s: mallinfo, mallinfo2, malloc_stats and
// malloc_info report GoAlloc's MemStats (mallinfo.c), and every operator new/delete variant is
// libgoalloc.so's own export with C++'s failure contract (newdelete.cpp).
import Foundation
import Testing

@Suite("glibc's mallinfo family and C++'s operator new/delete")
struct GlibcExtrasTests {
  static var includeFlag: [String] { ["-I", Paths.packageRoot.appendingPathComponent("include").path] }

  @Test("mallinfo2 and mallinfo figures equal MemStats; malloc_stats and malloc_info report them")
  func mallinfo() async throws {
    let exe = try await FixtureBuilder.shared.executable("mallinfo.c", flags: Self.includeFlag)
    let r = try await Subprocess.run(exe.path, preload: .goalloc, timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.filter { $0.hasPrefix("ok ") }.count == 3 && !r.stdout.contains("FAIL"), "\(r)")
    #expect(r.stderr.contains("Arena 0 (goalloc heap):") && r.stderr.contains("in use bytes"), "malloc_stats\n\(r)")
  }

  @Test("operator new/delete: all 20 variants bound to libgoalloc.so, bad_alloc, nothrow, new_handler")
  func operatorNew() async throws {
    let exe = try await FixtureBuilder.shared.executable("newdelete.cpp", flags: Self.includeFlag)
    let r = try await Subprocess.run(exe.path, preload: .goalloc, timeout: 60)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.contains("ok 20 of 20 operators bound to libgoalloc.so"), "\(r)")
    #expect(r.stdoutLines.filter { $0.hasPrefix("ok ") }.count == 3 && !r.stdout.contains("FAIL"), "\(r)")
    // The loader's own account: the program's references to operator new bind to the library.
    let b = try await Subprocess.run(exe.path, preload: .goalloc, environment: ["LD_DEBUG": "bindings"], timeout: 60)
    let lib = try Paths.requireLibrary().lastPathComponent
    let bindings = b.stderrLines.filter { $0.contains("normal symbol `_Znwm'") && $0.contains("binding file \(exe.path) ") }
    #expect(!bindings.isEmpty && bindings.allSatisfy { $0.contains("/\(lib) ") }, "\(bindings)")
  }
}
