// The `goalloc` command-line tool: inspect the size-class table, find the drop-in library and run
// programs with it preloaded.
//
//   goalloc sizeclasses [--csv | --emit-c]   the generated size-class table
//   goalloc preload-path                     absolute path of the built libgoalloc.so
//   goalloc run [--stats] -- CMD [ARGS...]   exec CMD with libgoalloc.so in LD_PRELOAD
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
    subcommands: [SizeClassesCommand.self, PreloadPathCommand.self, RunCommand.self, BenchCommand.self]
  )
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
