// goalloc-cli: `preload-path` and `run [--stats] -- CMD ARGS...`.
import Foundation
import Testing

@Suite("goalloc-cli")
struct CLITests {
  @Test("preload-path prints the absolute path of an existing libgoalloc.so")
  func preloadPath() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["preload-path"], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.count == 1 && r.stderrLines.isEmpty, "\(r)")
    let path = try #require(r.stdoutLines.first)
    #expect(path.hasPrefix("/") && path.hasSuffix("/libgoalloc.so"), "\(r)")
    #expect(FileManager.default.isReadableFile(atPath: path), "\(path) does not exist")
    // It is the library built next to the CLI (the first place it looks).
    #expect(URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            == Paths.library.resolvingSymlinksInPath().path, "\(r)")
  }

  @Test("run --stats -- /bin/echo hi")
  func runEcho() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["run", "--stats", "--", "/bin/echo", "hi"], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdout == "hi\n", "\(r)")
    // coreutils close stderr at exit (close_stdout), before the library's destructor prints the
    // stats: the library writes them to its own duplicate of fd 2, taken at load time.
    #expect(r.stderr.contains("goalloc: Mallocs "), "\(r)")
  }

  @Test("run --stats -- a C program: its output, its stats")
  func runProgram() async throws {
    let cli = try Paths.requireCLI()
    let hello = try await FixtureBuilder.shared.executable("hello.c")
    let r = try await Subprocess.run(cli.path, ["run", "--stats", "--", hello.path], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    let sum = (1...1000).reduce(0) { $0 + ($1 & 0xff) }
    #expect(r.stdoutLines == ["hello from gcc", "sum \(sum)"], "\(r)")
    #expect(r.stderr.contains("goalloc: Mallocs "), "\(r)")
    expectServedByGoAlloc(r, blocks: 1...1)
  }

  @Test("run appends stats=1 to the user's GOALLOC_DEBUG and passes the exit status through")
  func runEnvironmentAndStatus() async throws {
    let cli = try Paths.requireCLI()
    let sh = "/bin/sh"
    let r = try await Subprocess.run(
      cli.path, ["run", "--stats", "--", sh, "-c", "printf '%s|%s\\n' \"$LD_PRELOAD\" \"$GOALLOC_DEBUG\"; exit 7"],
      environment: ["GOALLOC_DEBUG": "badfree=warn"], timeout: 30)
    #expect(!r.timedOut && r.reason == .exit && r.status == 7, "\(r)")
    #expect(r.stdoutLines == ["\(Paths.library.path)|badfree=warn,stats=1"], "\(r)")
  }

  @Test("run without a command fails with one error line")
  func runWithoutCommand() async throws {
    let cli = try Paths.requireCLI()
    for args in [["run"], ["run", "--stats"], ["run", "--stats", "--"]] {
      let r = try await Subprocess.run(cli.path, args, timeout: 30)
      #expect(!r.timedOut && r.reason == .exit && r.status != 0, "\(r)")
      #expect(r.stdout.isEmpty, "\(r)")
      #expect(r.stderrLines.count == 1, "exactly one error line\n\(r)")
    }
  }

  @Test("run of a missing program exits 127 with one error line")
  func runMissingProgram() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["run", "--", "/nonexistent/goalloc-no-such-program"], timeout: 30)
    #expect(!r.timedOut && r.reason == .exit && r.status == 127, "\(r)")
    #expect(r.stderrLines.count == 1 && r.stderr.contains("/nonexistent/goalloc-no-such-program"), "\(r)")
  }
}
