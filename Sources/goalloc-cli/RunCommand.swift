// `goalloc run [--stats] -- CMD [ARGS...]`: replaces this process (execvp, no child) with CMD,
// with libgoalloc.so prepended to LD_PRELOAD and, for --stats, `stats=1` added to GOALLOC_DEBUG.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Run a command with libgoalloc.so preloaded.",
    discussion: """
      Sets LD_PRELOAD to the library that `goalloc preload-path` prints (in front of any existing \
      LD_PRELOAD) and replaces this process with the command, so its exit status is the \
      command's own. Put `--` before the command so its options are not read as goalloc's.
      """
  )

  @Flag(help: "Print allocator statistics when the program exits (adds stats=1 to GOALLOC_DEBUG).")
  var stats = false

  @Argument(parsing: .postTerminator, help: "The command to run and its arguments (after `--`).")
  var command: [String] = []

  func run() throws {
    let argv = command
    guard let program = argv.first else {
      printError("goalloc run: missing command; usage: goalloc run [--stats] -- CMD [ARGS...]")
      throw ExitCode(2)
    }
    let library = try Preload.libraryPath()
    setenv("LD_PRELOAD", Self.prepending(library, to: Self.environment("LD_PRELOAD"), separator: ":"), 1)
    if stats {
      setenv("GOALLOC_DEBUG", Self.appending("stats=1", to: Self.environment("GOALLOC_DEBUG"), separator: ","), 1)
    }
    throw ExitCode(Self.exec(program, argv))
  }

  /// The value of environment variable `name`, or nil when unset or empty.
  static func environment(_ name: String) -> String? {
    guard let value = getenv(name), value.pointee != 0 else { return nil }
    return String(cString: value)
  }

  /// `item` in front of `existing` (the preloaded library must come first).
  static func prepending(_ item: String, to existing: String?, separator: String) -> String {
    existing.map { item + separator + $0 } ?? item
  }

  /// `item` after `existing` (the user's own GOALLOC_DEBUG settings stay first).
  static func appending(_ item: String, to existing: String?, separator: String) -> String {
    existing.map { $0 + separator + item } ?? item
  }

  /// Replaces this process with `program`; returns only on failure, with the exit status to use
  /// (127: not found, 126: not executable), as shells do.
  static func exec(_ program: String, _ arguments: [String]) -> Int32 {
    var cArgs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    cArgs.append(nil)
    execvp(program, &cArgs)
    let err = errno
    printError("goalloc run: cannot execute \(program): \(String(cString: strerror(err)))")
    return err == ENOENT ? 127 : 126
  }
}
