// `goalloc run [--stats] [--gctrace] [--heapmap FILE.svg] -- CMD [ARGS...]`: replaces this process
// (execvp, no child) with CMD, with libgoalloc.so prepended to LD_PRELOAD and, for --stats,
// `stats=1` (for --gctrace, `gctrace=1`) added to GOALLOC_DEBUG. With --heapmap it cannot replace itself: it runs CMD as a child with
// `heapmap=<temporary file>`, waits, draws the heap map CMD wrote at exit as an SVG, and exits
// with CMD's status.

import ArgumentParser
import GoAllocTools

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

      With --heapmap FILE.svg the command runs as a child instead; at its exit the library writes \
      its heap map (GOALLOC_DEBUG=heapmap=...), and goalloc draws it as FILE.svg: every span \
      coloured by size class and shaded by how full it is, free and released pages, totals and \
      a legend. The exit status is still the command's. If the command starts other programs \
      under the library, the one that exits last writes the map.
      """
  )

  @Flag(help: "Print allocator statistics when the program exits (adds stats=1 to GOALLOC_DEBUG).")
  var stats = false

  @Flag(help: "Print one line per garbage collection to stderr (GC mode; adds gctrace=1 to GOALLOC_DEBUG).")
  var gctrace = false

  @Option(name: .customLong("heapmap"), help: ArgumentHelp(
    "Draw the program's heap at exit as an SVG picture in this file.", valueName: "file.svg"))
  var heapmap: String?

  @Option(help: ArgumentHelp("With --heapmap, also keep the heap map text (# goalloc heapmap v1) in this file.",
                             valueName: "file"))
  var heapmapText: String?

  func validate() throws {
    if heapmapText != nil && heapmap == nil {
      throw ValidationError("--heapmap-text needs --heapmap.")
    }
    if let h = heapmap, h.isEmpty { throw ValidationError("--heapmap needs a file name.") }
  }

  @Argument(parsing: .postTerminator, help: "The command to run and its arguments (after `--`).")
  var command: [String] = []

  func run() throws {
    let argv = command
    guard let program = argv.first else {
      throw ValidationError("missing command; usage: goalloc run [--stats] [--gctrace] [--heapmap FILE.svg] -- CMD [ARGS...]")
    }
    let library = try Preload.libraryPath()
    if let heapmap {
      throw ExitCode(try runWithHeapMap(argv, library: library, svgPath: heapmap))
    }
    setenv("LD_PRELOAD", Self.prepending(library, to: Self.environment("LD_PRELOAD"), separator: ":"), 1)
    if stats {
      setenv("GOALLOC_DEBUG", Self.appending("stats=1", to: Self.environment("GOALLOC_DEBUG"), separator: ","), 1)
    }
    if gctrace {
      setenv("GOALLOC_DEBUG", Self.appending("gctrace=1", to: Self.environment("GOALLOC_DEBUG"), separator: ","), 1)
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

  /// Runs the command as a child with heapmap=<temporary file>, then renders the SVG. Returns the
  /// command's exit status (or 1 if it succeeded but no map could be drawn).
  func runWithHeapMap(_ argv: [String], library: String, svgPath: String) throws -> Int32 {
    let dir = try Files.temporaryDirectory("heapmap")
    defer { Files.removeDirectory(dir) }
    let mapFile = Files.join(dir, "heapmap.txt")
    var settings: [(String, String)] = [("heapmap", mapFile)]
    if stats { settings.append(("stats", "1")) }
    if gctrace { settings.append(("gctrace", "1")) }
    let env = ChildProcess.preloadEnvironment(library: library, debug: settings)
    let pid = try ChildProcess.spawn(argv, env: env, command: "goalloc run")
    let end = ChildProcess.wait(pid)
    guard let text = Files.read(mapFile), !text.isEmpty else {
      printError("goalloc run: \(argv[0]) wrote no heap map (\(end.description)); it must be dynamically linked "
                 + "and exit normally (not by _exit() or a signal)")
      return end.exitCode != 0 ? end.exitCode : 1
    }
    if let keep = heapmapText { try Files.writeFile(keep, text, command: "goalloc run") }
    let map: HeapMap
    do {
      map = try HeapMap(parsing: text)
    } catch {
      printError("goalloc run: the heap map from \(argv[0]) is malformed: \(error)")
      return end.exitCode != 0 ? end.exitCode : 1
    }
    let svg = HeapMapSVG.render(map, title: argv.joined(separator: " "))
    try Files.writeFile(svgPath, svg, command: "goalloc run")
    let t = map.totals
    printError("goalloc run: heap map of \(argv[0]) written to \(svgPath): \(t.spans) spans, "
               + "\(GoAllocFormat.bytes(t.inUseBytes)) in use, \(GoAllocFormat.bytes(t.freeBytes)) free, "
               + "\(GoAllocFormat.bytes(t.releasedBytes)) released")
    return end.exitCode
  }
}
