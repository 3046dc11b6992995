// Programs written for the Boehm GC (gc.h, linked with -lgc against Debian's libgc.so.1) run
// unchanged on GoAlloc's collector: LD_PRELOAD=libgoalloc.so, or libgoalloc.so under the name
// libgc.so.1 on LD_LIBRARY_PATH. Output is compared with the same binary on bdwgc.
// Needs libgc-dev (Scripts/test.sh installs it as root); chase and mmv (Debian programs that
// link libgc1) are run when installed.
import Foundation
import Testing

enum Boehm {
  static let installed = FileManager.default.fileExists(atPath: "/usr/include/gc.h")
    && ["/usr/lib/x86_64-linux-gnu/libgc.so", "/usr/lib/aarch64-linux-gnu/libgc.so", "/usr/lib/libgc.so"]
      .contains { FileManager.default.fileExists(atPath: $0) }
  static let skip = "libgc-dev is not installed (Scripts/test.sh installs it as root)"

  static func build(_ fixture: String) async throws -> URL {
    try await FixtureBuilder.shared.executable(
      name: fixture + "-lgc", source: try Paths.fixture(fixture + ".c"), compiler: "cc",
      flags: ["-O1", "-pthread", "-g"], libraries: ["-lgc"])
  }

  /// A folder holding libgoalloc.so under the name libgc.so.1 (a symlink).
  static func libgcDirectory() throws -> URL {
    let dir = Paths.scratch.appendingPathComponent("libgc-shim")
    let link = dir.appendingPathComponent("libgc.so.1")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: link.path) {
      try? FileManager.default.createSymbolicLink(at: link, withDestinationURL: try Paths.requireLibrary())
    }
    return dir
  }

  static func numGC(_ stderr: String) -> Int? {
    stderr.split(separator: "\n").compactMap { l -> Int? in
      l.hasPrefix("goalloc: NumGC ") ? Int(l.dropFirst("goalloc: NumGC ".count)) : nil
    }.last
  }
  static func gcMallocs(_ stderr: String) -> Int? {
    stderr.split(separator: "\n").compactMap { l -> Int? in
      l.hasPrefix("goalloc: GCMallocs ") ? Int(l.dropFirst("goalloc: GCMallocs ".count)) : nil
    }.last
  }
}

@Suite("bdwgc programs on GoAlloc's collector", .enabled(if: Boehm.installed, "libgc-dev is not installed (Scripts/test.sh installs it as root)"))
struct BoehmTests {
  @Test("GCBench-shaped: output identical on bdwgc and under LD_PRELOAD; GoAlloc's collector ran")
  func gcbench() async throws {
    let exe = try await Boehm.build("gcbench")
    let bdwgc = try await Subprocess.run(exe.path, timeout: 120)
    #expect(bdwgc.exitedCleanly && !bdwgc.stdout.contains("FAIL"), "\(bdwgc)")
    let ours = try await Subprocess.run(exe.path, preload: .goallocStats, timeout: 120)
    #expect(ours.exitedCleanly && ours.stdout == bdwgc.stdout, "\(ours)")
    #expect((Boehm.numGC(ours.stderr) ?? 0) > 0, "\(ours)")
    #expect(ours.stdout.contains("collections ran: yes"))
  }

  @Test("libgoalloc.so as libgc.so.1 on LD_LIBRARY_PATH runs the same binary")
  func libraryPath() async throws {
    let exe = try await Boehm.build("gcbench")
    let bdwgc = try await Subprocess.run(exe.path, timeout: 120)
    let ours = try await Subprocess.run(exe.path, environment: ["LD_LIBRARY_PATH": try Boehm.libgcDirectory().path,
                                                                "GOALLOC_DEBUG": "stats=1"], timeout: 120)
    #expect(ours.exitedCleanly && ours.stdout == bdwgc.stdout, "\(ours)")
    #expect((Boehm.numGC(ours.stderr) ?? 0) > 0, "\(ours)")
  }

  @Test("GC_THREADS: pthread_create redirected to GC_pthread_create, threads hand lists over while collecting")
  func threads() async throws {
    let exe = try await Boehm.build("gcthreads")
    let bdwgc = try await Subprocess.run(exe.path, timeout: 120)
    #expect(bdwgc.exitedCleanly, "\(bdwgc)")
    for _ in 0..<3 {
      let ours = try await Subprocess.run(exe.path, preload: .goallocStats, timeout: 120)
      #expect(ours.exitedCleanly && ours.stdout == bdwgc.stdout, "\(ours)")
      #expect((Boehm.numGC(ours.stderr) ?? 0) > 0, "\(ours)")
    }
  }

  @Test("finalizers (ordered, ignore_self, no_order), GC_invoke_finalizers, the notifier, disappearing and long links: same output as bdwgc")
  func finalization() async throws {
    let exe = try await Boehm.build("gcfinalize")
    let bdwgc = try await Subprocess.run(exe.path, timeout: 120)
    #expect(bdwgc.exitedCleanly && bdwgc.stdoutLines.count >= 25, "\(bdwgc)")
    let ours = try await Subprocess.run(exe.path, preload: .goalloc, timeout: 120)
    #expect(ours.exitedCleanly && ours.stdout == bdwgc.stdout, "\(ours)")
    let viaPath = try await Subprocess.run(exe.path, environment: ["LD_LIBRARY_PATH": try Boehm.libgcDirectory().path],
                                           timeout: 120)
    #expect(viaPath.exitedCleanly && viaPath.stdout == bdwgc.stdout, "\(viaPath)")
  }

  @Test("the bdwgc programs with concurrent marking (written pages tracked) under checkmark: same output as bdwgc",
        arguments: ["gcbench", "gcthreads", "gcfinalize"])
  func concurrent(program: String) async throws {
    let exe = try await Boehm.build(program)
    let bdwgc = try await Subprocess.run(exe.path, timeout: 120)
    #expect(bdwgc.exitedCleanly, "\(bdwgc)")
    // (and once with gcdirty=mprotect: read-only pages and a SIGSEGV handler)
    for (procs, dirty) in [("1", ""), ("2", ""), ("2", ",gcdirty=mprotect")] {
      let ours = try await Subprocess.run(exe.path, preload: .goalloc, environment: [
        "GOALLOC_GC_PROCS": procs, "GOALLOC_DEBUG": "stats=1,gcconc=1,gccheckmark=1" + dirty], timeout: 180)
      #expect(ours.exitedCleanly && ours.stdout == bdwgc.stdout, "\(ours)")
      if program != "gcfinalize" { #expect((Boehm.numGC(ours.stderr) ?? 0) > 0, "\(ours)") }
    }
  }

  @Test("a bdwgc call GoAlloc does not implement aborts with one line naming it")
  func unsupported() async throws {
    let exe = try await Boehm.build("gcunsupported")
    let bdwgc = try await Subprocess.run(exe.path, timeout: 60)
    #expect(bdwgc.exitedCleanly && bdwgc.stdoutLines == ["before", "after"], "\(bdwgc)")
    let ours = try await Subprocess.run(exe.path, preload: .goalloc, timeout: 60)
    #expect(!ours.exitedCleanly && ours.stdoutLines == ["before"], "\(ours)")
    let lines = ours.stderr.split(separator: "\n").filter { $0.contains("GC_") }
    #expect(lines == ["goalloc: GC_register_finalizer_unreachable is not supported (GoAlloc's bdwgc API)"], "\(ours)")
  }

  @Test("Debian's chase and mmv (linked with libgc1): same output, objects from GoAlloc's collector, also marking concurrently")
  func debianPrograms() async throws {
    guard let chase = Paths.which("chase"), let mmv = Paths.which("mmv") else {
      print("BoehmTests: chase or mmv not installed (apt-get install chase mmv); skipped")
      return
    }
    let dir = try Paths.freshDirectory("boehm-real")
    let fm = FileManager.default
    try fm.createDirectory(at: dir.appendingPathComponent("target"), withIntermediateDirectories: true)
    var previous = "target"
    var names: [String] = []
    for i in 0..<40 {
      let name = "link\(i)"
      try fm.createSymbolicLink(atPath: dir.appendingPathComponent(name).path, withDestinationPath: previous)
      previous = name
      names.append(name)
    }
    let plain = try await Subprocess.run(chase, names, directory: dir, timeout: 60)
    #expect(plain.exitedCleanly && plain.stdoutLines.count == 40, "\(plain)")
    // (and with concurrent marking, a collection forced at exit by GOALLOC_GC=1: GOGC 1 %)
    for conc in [[:], ["GOALLOC_DEBUG": "stats=1,gcconc=1,gccheckmark=1", "GOALLOC_GC": "1"]] as [[String: String]] {
      let ours = try await Subprocess.run(chase, names, preload: .goallocStats, environment: conc, directory: dir, timeout: 60)
      #expect(ours.exitedCleanly && ours.stdout == plain.stdout, "\(ours)")
      #expect((Boehm.gcMallocs(ours.stderr) ?? 0) > 0, "\(ours)")
    }

    // mmv: rename a batch of files in two copies of a folder, on bdwgc and on GoAlloc.
    var outputs: [String] = []
    let concurrent = ["GOALLOC_DEBUG": "stats=1,gcconc=1,gccheckmark=1", "GOALLOC_GC": "1"]
    for (preload, env) in [(Preload.none, [:]), (Preload.goallocStats, [:]), (Preload.goallocStats, concurrent)] {
      let d = try Paths.freshDirectory("boehm-mmv")
      for i in 0..<50 { fm.createFile(atPath: d.appendingPathComponent("file\(i).txt").path, contents: Data()) }
      let r = try await Subprocess.run(mmv, ["-v", "*.txt", "#1.md"], preload: preload, environment: env, directory: d, timeout: 60)
      #expect(r.exitedCleanly, "\(r)")
      if preload.library { #expect((Boehm.gcMallocs(r.stderr) ?? 0) > 0, "\(r)") }
      let listing = try fm.contentsOfDirectory(atPath: d.path).sorted().joined(separator: " ")
      outputs.append(r.stdoutLines.sorted().joined(separator: "\n") + "\n" + listing)
    }
    #expect(outputs[0] == outputs[1] && outputs[0] == outputs[2] && outputs[0].contains("file7.md"), "\(outputs)")
  }
}
