// The `goalloc` command-line tool: inspect the size-class table, find the drop-in library and run
// programs with it preloaded.
//
//   goalloc sizeclasses [--csv | --emit-c]   the generated size-class table
//   goalloc explain [--json] [--struct TYPES] SIZE...
//                                            size class, span, waste, tiny, span classes of each size
//   goalloc preload-path                     absolute path of libgoalloc.so (GOALLOC_LIB overrides)
//   goalloc run [--stats] [--heapmap F.svg] -- CMD [ARGS...]
//                                            CMD with libgoalloc.so in LD_PRELOAD (and its heap map)
//   goalloc stats [--json] -- CMD [ARGS...]  CMD's allocator statistics at exit, as a table
//   goalloc compare -- CMD [ARGS...]         CMD under glibc, GoAlloc and the installed peers
//   goalloc heapmap FILE [-o OUT.svg]        draw a heap map text file as SVG
//   goalloc trace record|summarize|replay    allocation traces
//   goalloc profile pprof|folded|flamegraph|top FILE   heap profiles (GOALLOC_DEBUG=memprofile=FILE)
//   goalloc --version                        the version and the library's build
//
// The product is `goalloc-cli` (a library product already owns the name `goalloc`); the command
// calls itself `goalloc`, and Scripts/install.sh installs it as `goalloc`. Every usage error
// (a bad option or value, a missing command) prints one line and exits 64 (EX_USAGE).

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
      is loaded with LD_PRELOAD; `goalloc run` does that for you. Usage errors exit with status 64.
      """,
    version: GoallocVersion.number,
    subcommands: [SizeClassesCommand.self, ExplainCommand.self, PreloadPathCommand.self, RunCommand.self, StatsCommand.self,
                  CompareCommand.self, HeapMapCommand.self, GCTimelineCommand.self, TraceCommand.self, ProfileCommand.self, BenchCommand.self]
  )

  /// As ArgumentParser's main, except that a bad command line gets one line on stderr (the
  /// problem and where the help is), not the usage block; exit status 64 (EX_USAGE) all the same.
  /// `--version` names the library's build too.
  static func main() {
    let arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.first == "--version" {
      print(GoallocVersion.report())
      Self.exit(withError: nil)
    }
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      if !(error is ExitCode) && exitCode(for: error) == .validationFailure {
        let path = commandPath(arguments[...])
        var text = message(for: error)
        while text.hasSuffix(".") || text.hasSuffix("\n") { text.removeLast() }
        text = UsageHints.explain(text, arguments: arguments, path: path)
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

/// Clearer words for two parse errors ArgumentParser words for its own reasons.
enum UsageHints {
  /// Subcommands that run a command given after `--`, and their options that take a value.
  static let runners: Set<String> = ["goalloc run", "goalloc stats", "goalloc compare", "goalloc trace record"]
  static let optionsWithValues: Set<String> = ["--heapmap", "--heapmap-text", "-o", "--output", "--runs", "--out"]

  static func explain(_ text: String, arguments: [String], path: String) -> String {
    // "goalloc explain -5": ArgumentParser takes "-5" for an option.
    if path == "goalloc explain", let n = arguments.first(where: isNegativeNumber) {
      return "\(n): a size must be at least 1 byte"
    }
    // "--runs -1": ArgumentParser takes "-1" for an option and reports a missing value.
    if text.hasPrefix("Missing value for '"),
       let i = arguments.firstIndex(where: { text.hasPrefix("Missing value for '\($0)") && $0.hasPrefix("-") }),
       i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
      return "\(arguments[i]) \(arguments[i + 1]): negative numbers are not accepted"
    }
    // "goalloc run ls -l": the command's own flags were read as goalloc's.
    if runners.contains(path), !arguments.contains("--"),
       text.hasPrefix("Unknown option") || text.hasPrefix("Unexpected argument") {
      let depth = path.split(separator: " ").count - 1
      var i = depth
      while i < arguments.count, arguments[i].hasPrefix("-") {
        i += optionsWithValues.contains(arguments[i]) ? 2 : 1
      }
      if i < arguments.count {
        let fixed = ["goalloc"] + arguments[..<i] + ["--"] + arguments[i...]
        return "\(text); put `--` before the command and its arguments: \(fixed.joined(separator: " "))"
      }
      return "\(text); put `--` before the command and its arguments"
    }
    return text
  }

  static func isNegativeNumber(_ s: String) -> Bool {
    s.count > 1 && s.hasPrefix("-") && s.dropFirst().allSatisfy { $0.isNumber || $0 == "." }
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
