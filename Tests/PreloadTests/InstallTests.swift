// Installed like the peers: Scripts/install.sh puts goalloc, libgoalloc.so, goalloc.h and
// goalloc.pc under a prefix; the installed command finds the installed library from anywhere
// (GOALLOC_LIB overrides it), names its version and the library's build, and a C program built
// with the pkg-config flags links against the library.
import Foundation
import Testing

@Suite("install")
struct InstallTests {
  @Test("install.sh --prefix TMP, then everything runs from TMP")
  func installIntoPrefix() async throws {
    let prefix = try Paths.freshDirectory("prefix").appendingPathComponent("usr")
    let script = Paths.packageRoot.appendingPathComponent("Scripts/install.sh").path
    let install = try await Subprocess.run("/bin/bash", [script, "--prefix", prefix.path, "--from", Paths.buildFolder.path],
                                           timeout: 60)
    #expect(install.exitedCleanly, "\(install)")
    let files = ["bin/goalloc", "lib/libgoalloc.so", "include/goalloc.h", "lib/pkgconfig/goalloc.pc",
                 "share/doc/goalloc/LICENSE", "share/doc/goalloc/README.md"]
    for f in files {
      #expect(FileManager.default.fileExists(atPath: prefix.appendingPathComponent(f).path), "\(f) installed\n\(install)")
    }
    let goalloc = prefix.appendingPathComponent("bin/goalloc").path
    let lib = prefix.appendingPathComponent("lib/libgoalloc.so").path
    let elsewhere = try Paths.freshDirectory("elsewhere")

    // --version: the version and the installed library's build.
    let version = try await Subprocess.run(goalloc, ["--version"], directory: elsewhere, timeout: 30)
    #expect(version.exitedCleanly, "\(version)")
    #expect(version.stdoutLines.first?.hasPrefix("goalloc 0.") == true, "\(version)")
    let libLine = try #require(version.stdoutLines.last)
    #expect(libLine.hasPrefix("library: \(lib), build-id "), "\(version)")
    let id = libLine.split(separator: " ").last.map(String.init) ?? ""
    #expect(id.count == 40 && id.allSatisfy(\.isHexDigit), "a GNU build ID: \(id)")

    // The installed command finds the installed library, from any folder; its help names it goalloc.
    let path = try await Subprocess.run(goalloc, ["preload-path"], directory: elsewhere, timeout: 30)
    #expect(path.stdoutLines == [lib], "\(path)")
    let help = try await Subprocess.run(goalloc, ["--help"], timeout: 30)
    #expect(help.stdout.contains("USAGE: goalloc <subcommand>"), "\(help)")
    let run = try await Subprocess.run(goalloc, ["run", "--stats", "--", "/bin/echo", "hi"], directory: elsewhere, timeout: 30)
    #expect(run.exitedCleanly && run.stdout == "hi\n" && Stats.headings(run.stderr).count == 1, "\(run)")

    // GOALLOC_LIB overrides it; a GOALLOC_LIB that cannot be read is an error, not a fallback.
    let other = try Paths.requireLibrary().path
    let overridden = try await Subprocess.run(goalloc, ["preload-path"], environment: ["GOALLOC_LIB": other], timeout: 30)
    #expect(overridden.stdoutLines == [other], "\(overridden)")
    let missing = try await Subprocess.run(goalloc, ["preload-path"], environment: ["GOALLOC_LIB": "/nonexistent/libgoalloc.so"],
                                           timeout: 30)
    #expect(missing.status == 1 && missing.stderrLines.count == 1 && missing.stderr.contains("GOALLOC_LIB"), "\(missing)")

    // goalloc.pc: a C program compiled with its flags uses the library (and its header).
    let pc = try String(contentsOf: prefix.appendingPathComponent("lib/pkgconfig/goalloc.pc"), encoding: .utf8)
    #expect(pc.contains("prefix=\(prefix.path)") && pc.contains("-lgoalloc") && pc.contains("Version: 0."), "\(pc)")
    var flags = ["-I\(prefix.path)/include", "-L\(prefix.path)/lib", "-Wl,-rpath,\(prefix.path)/lib", "-lgoalloc"]
    if let pkgConfig = Paths.which("pkg-config") {
      let q = try await Subprocess.run(pkgConfig, ["--cflags", "--libs", "goalloc"],
                                       environment: ["PKG_CONFIG_PATH": "\(prefix.path)/lib/pkgconfig"], timeout: 30)
      #expect(q.exitedCleanly, "\(q)")
      flags = q.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
      #expect(flags.contains("-lgoalloc") && flags.contains("-I\(prefix.path)/include"), "\(q)")
    }
    let source = elsewhere.appendingPathComponent("linked.c")
    try """
      #include <goalloc.h>
      #include <stdio.h>
      #include <stdlib.h>
      int main(void) {
        void *p = malloc(1000);
        struct goalloc_memstats m;
        goalloc_read_memstats(&m);
        printf("mallocs>0 %d sys<=reserved %d\\n", m.mallocs > 0, m.sys <= m.sys_reserved);
        free(p);
        return 0;
      }
      """.write(to: source, atomically: true, encoding: .utf8)
    let exe = elsewhere.appendingPathComponent("linked")
    let cc = try await Subprocess.run(try Paths.requireTool("cc"), [source.path, "-o", exe.path] + flags, timeout: 120)
    #expect(cc.exitedCleanly, "\(cc)")
    let linked = try await Subprocess.run(exe.path, timeout: 30)
    #expect(linked.exitedCleanly && linked.stdoutLines == ["mallocs>0 1 sys<=reserved 1"], "\(linked)")
  }

  @Test("install.sh: a bad argument is a usage error")
  func badArgument() async throws {
    let script = Paths.packageRoot.appendingPathComponent("Scripts/install.sh").path
    let r = try await Subprocess.run("/bin/bash", [script, "--bogus"], timeout: 30)
    #expect(r.status == 64 && r.stderrLines.count == 1, "\(r)")
  }
}
