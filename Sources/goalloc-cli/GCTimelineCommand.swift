// `goalloc gc-timeline -o FILE.svg -- CMD [ARGS...]`: runs CMD as a child under libgoalloc.so with
// GOALLOC_DEBUG=gclog=<temporary file>, then draws its collections (GCTimelineSVG): heap in use
// against the goal, what each mark found live, every pause. `--from FILE` draws a log or an
// allocation trace recorded earlier instead (its `g` lines). Prints the summary either way; the
// exit status is the command's.

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct GCTimelineCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gc-timeline",
    abstract: "Draw a GC-mode run as an SVG timeline: heap against goal, marked bytes, pauses.",
    discussion: """
      Runs the command under libgoalloc.so with GOALLOC_DEBUG=gclog=<temporary file> (one line \
      per collection: time, heap before and after, marked, goal, pause) and draws what it wrote. \
      The program must use the GC mode (goalloc_gc_* or the bdwgc layer's GC_*). With --from, \
      draws a file recorded earlier: a GOALLOC_DEBUG=gclog=FILE log, or an allocation trace \
      (allocfreetrace=FILE, `goalloc trace record`), whose collections are its `g` lines.
      """
  )

  @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The SVG file to write.", valueName: "file.svg"))
  var output: String

  @Option(help: ArgumentHelp("Draw this log or trace instead of running a command.", valueName: "file"))
  var from: String?

  @Option(help: ArgumentHelp("Also keep the collections' log (gclog) in this file.", valueName: "file"))
  var log: String?

  @Argument(parsing: .postTerminator, help: "The command to run and its arguments (after `--`).")
  var command: [String] = []

  func validate() throws {
    if output.isEmpty { throw ValidationError("--output needs a file name.") }
    if from != nil && !command.isEmpty { throw ValidationError("give either --from FILE or a command, not both.") }
    if from == nil && command.isEmpty {
      throw ValidationError("missing command; usage: goalloc gc-timeline -o FILE.svg -- CMD [ARGS...] (or --from FILE)")
    }
    if from != nil && log != nil { throw ValidationError("--log goes with a command, not --from.") }
  }

  func run() throws {
    if let from {
      try draw(path: from, title: from)
      return
    }
    let library = try Preload.libraryPath()
    let dir = try Files.temporaryDirectory("gctimeline")
    defer { Files.removeDirectory(dir) }
    let logFile = log ?? Files.join(dir, "gclog.txt")
    let env = ChildProcess.preloadEnvironment(library: library, debug: [("gclog", logFile)])
    let pid = try ChildProcess.spawn(command, env: env, command: "goalloc gc-timeline")
    let end = ChildProcess.wait(pid)
    guard let text = Files.read(logFile), text.hasPrefix(AllocationTrace.header) else {
      printError("goalloc gc-timeline: \(command[0]) wrote no GC log (\(end.description)); it must be dynamically "
                 + "linked and use the GC mode")
      throw ExitCode(end.exitCode != 0 ? end.exitCode : 1)
    }
    try draw(path: logFile, title: command.joined(separator: " "))
    if end.exitCode != 0 { throw ExitCode(end.exitCode) }
  }

  func draw(path: String, title: String) throws {
    let collections: [TraceCollection]
    do {
      collections = try AllocationTrace.readAll(path: path) { _ in }.collections
    } catch {
      printError("goalloc gc-timeline: \(error)")
      throw ExitCode(1)
    }
    try Files.writeFile(output, GCTimelineSVG.render(collections, title: title), command: "goalloc gc-timeline")
    printError("goalloc gc-timeline: \(output): \(GCTimelineSummary(collections).description)")
  }
}
