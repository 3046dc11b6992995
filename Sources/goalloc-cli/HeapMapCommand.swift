// `goalloc heapmap FILE [-o OUT.svg]`: draws a heap map text file (GOALLOC_DEBUG=heapmap=FILE,
// goalloc_write_heapmap()) as SVG.

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct HeapMapCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "heapmap",
    abstract: "Draw a heap map file as an SVG picture.",
    discussion: """
      Reads the "# goalloc heapmap v1" text that GOALLOC_DEBUG=heapmap=FILE writes at exit (or \
      goalloc_write_heapmap() whenever a program calls it) and draws it: arenas as blocks of 8 KiB \
      page cells (128 to a row: a row is 1 MiB), each span coloured by its size class and paler \
      the emptier it is, free pages light grey, pages released to the OS hatched, long runs of \
      whole rows folded into one labelled band, with the totals and a legend. \
      `goalloc run --heapmap OUT.svg -- CMD` does both steps for you.
      """
  )

  @Argument(help: ArgumentHelp("The heap map text file.", valueName: "heapmap-file"))
  var input: String

  @Option(name: [.short, .customLong("output")],
          help: ArgumentHelp("Where to write the SVG (default: the input's name with .svg; - for standard output).",
                             valueName: "file.svg"))
  var output: String?

  @Option(help: "A title for the picture (default: the input file's name).")
  var title: String?

  @Option(help: "Pages per row.")
  var columns = 128

  @Flag(name: .customLong("no-tooltips"), help: "Leave out the per-span tooltips (smaller files for huge heaps).")
  var noTooltips = false

  func validate() throws {
    if columns < 8 || columns > 4096 { throw ValidationError("--columns must be between 8 and 4096.") }
  }

  func run() throws {
    let map: HeapMap
    do {
      map = try HeapMap(contentsOf: input)
    } catch {
      printError("goalloc heapmap: \(input): " + (error.line > 0 ? "line \(error.line): " : "") + error.message)
      throw ExitCode.failure
    }
    var options = HeapMapSVG.Options()
    options.columns = columns
    options.tooltips = !noTooltips
    let svg = HeapMapSVG(options: options).render(map, title: title ?? Files.baseName(input))
    let out = output ?? Self.svgName(for: input)
    if out == "-" {
      print(svg, terminator: "")
    } else {
      try Files.writeFile(out, svg, command: "goalloc heapmap")
      let t = map.totals
      printError("goalloc heapmap: wrote \(out): \(t.spans) spans, \(GoAllocFormat.bytes(t.inUseBytes)) in use, "
                 + "\(GoAllocFormat.bytes(t.freeBytes)) free, \(GoAllocFormat.bytes(t.releasedBytes)) released")
    }
  }

  /// "dir/map.txt" -> "dir/map.svg"; a name without an extension gets ".svg" added.
  static func svgName(for input: String) -> String {
    let base = Files.baseName(input)
    if let dot = base.lastIndex(of: "."), dot != base.startIndex {
      return String(input.dropLast(base.distance(from: dot, to: base.endIndex))) + ".svg"
    }
    return input + ".svg"
  }
}
