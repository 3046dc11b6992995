// The `goalloc` command-line tool: inspect the size-class table, find the drop-in library and run
// programs with it preloaded.
//
//   goalloc sizeclasses [--csv | --emit-c]   the generated size-class table
//   goalloc preload-path                     absolute path of the built libgoalloc.so
//   goalloc run [--stats] [--heapmap F.svg] -- CMD [ARGS...]
//                                            CMD with libgoalloc.so in LD_PRELOAD (and its heap map)
//   goalloc stats [--json] -- CMD [ARGS...]  CMD's allocator statistics at exit, as a table
//   goalloc heapmap FILE [-o OUT.svg]        draw a heap map text file as SVG
//   goalloc trace record|summarize|replay    allocation traces
//   goalloc profile pprof|folded|flamegraph|top FILE   heap profiles (GOALLOC_DEBUG=memprofile=FILE)
//
// The product is `goalloc-cli` (a library product already owns the name `goalloc`); the command
// calls itself `goalloc`.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@main
struct GoallocCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "goalloc",
    abstract: "Tools for GoAlloc, Go's memory allocator rebuilt in Swift.",
    discussion: """
      libgoalloc.so replaces malloc, free and friends in any dynamically linked program when it \
      is loaded with LD_PRELOAD; `goalloc run` does that for you.
      """,
    subcommands: [SizeClassesCommand.self, PreloadPathCommand.self, RunCommand.self, StatsCommand.self,
                  HeapMapCommand.self, TraceCommand.self, ProfileCommand.self, BenchCommand.self]
  )

  /// As ArgumentParser's main, except that a bad command line gets one line on stderr (the
  /// problem and where the help is), not the usage block; exit status 64 (EX_USAGE) all the same.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      if !(error is ExitCode) && exitCode(for: error) == .validationFailure {
        let path = commandPath(CommandLine.arguments.dropFirst())
        var text = message(for: error)
        while text.hasSuffix(".") || text.hasSuffix("\n") { text.removeLast() }
        printError("\(path): \(text) (see `\(path) --help`)")
        Self.exit(withError: ExitCode.validationFailure)
      }
      Self.exit(withError: error)
    }
  }

  /// "goalloc trace record": the subcommand names at the front of `arguments`.
  static func commandPath(_ arguments: ArraySlice<String>) -> String {
    var names = ["goalloc"]
    var level: [ParsableCommand.Type] = configuration.subcommands
    for arg in arguments {
      guard let sub = level.first(where: { ($0.configuration.commandName ?? "") == arg }) else { break }
      names.append(arg)
      level = sub.configuration.subcommands
    }
    return names.joined(separator: " ")
  }
}

/// Writes `message` and a newline to standard error (diagnostics never go to standard output).
func printError(_ message: String) {
  let bytes = Array((message + "\n").utf8)
  bytes.withUnsafeBytes { buffer in
    var offset = 0
    while offset < buffer.count {
      let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
      if n <= 0 { return }
      offset += n
    }
  }
}
