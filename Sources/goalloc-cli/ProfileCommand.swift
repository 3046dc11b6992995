// `goalloc profile pprof|folded|flamegraph|top FILE`: turns a heap profile written by the library
// (GOALLOC_DEBUG=memprofile=FILE, goalloc_write_heap_profile()) into what people read: pprof's
// gzipped protobuf for `go tool pprof`, folded stacks for flame-graph tools, an SVG flame graph,
// or a table of the top allocation sites. Addresses are symbolized here (Symbolizer.swift), not
// in the profiled process.

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct ProfileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "profile",
    abstract: "Convert a heap profile (GOALLOC_DEBUG=memprofile=FILE) for pprof, flame-graph tools or reading.",
    discussion: """
      Record a profile with GOALLOC_DEBUG=memprofile=FILE (memprofilerate=BYTES sets the mean \
      bytes between samples, default 524288; 1 samples every allocation), e.g. \
      `GOALLOC_DEBUG=memprofile=heap.prof LD_PRELOAD=$(goalloc preload-path) ./prog`. It holds the \
      live sampled objects at exit with their call stacks; sizes are unsampled as Go's pprof does.
      """,
    subcommands: [Pprof.self, Folded.self, FlameGraph.self, Top.self]
  )

  struct Input: ParsableArguments {
    @Argument(help: ArgumentHelp("The heap profile written by the library.", valueName: "profile"))
    var input: String

    @Flag(name: .customLong("no-addr2line"), help: "Name frames from symbol tables only (no addr2line for file:line).")
    var noAddr2line = false

    func load(_ command: String) throws -> (HeapProfileData, [UInt: Symbolizer.Symbol]) {
      let profile: HeapProfileData
      do {
        profile = try HeapProfileData(path: input)
      } catch {
        printError("\(command): \(input): \(error)")
        throw ExitCode.failure
      }
      let pcs = profile.samples.flatMap(\.pcs)
      return (profile, Symbolizer.symbolize(pcs, mappings: profile.mappings, useAddr2line: !noAddr2line))
    }

    func output(_ given: String?, suffix: String) -> String {
      if let given { return given }
      var base = input
      if base.hasSuffix(".prof") { base.removeLast(5) }
      return base + suffix
    }
  }

  static func name(_ pc: UInt, _ symbols: [UInt: Symbolizer.Symbol]) -> String {
    symbols[pc]?.text ?? "0x" + String(pc, radix: 16)
  }

  struct Pprof: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write pprof's format (gzipped profile.proto): `go tool pprof -top OUT` reads it.")
    @OptionGroup var source: Input
    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write (default: the input's name with .pb.gz).", valueName: "file.pb.gz"))
    var output: String?
    @Flag(help: "Write the protobuf without gzip (pprof reads both).")
    var uncompressed = false

    func run() throws {
      let (profile, symbols) = try source.load("goalloc profile pprof")
      let proto = GoAllocTools.Pprof.heapProfile(profile) { pc in
        guard let s = symbols[pc] else { return .init(function: nil) }
        // Named frames keep their module, so pprof shows where unnamed code lives too.
        let name = s.function ?? s.fallback
        return .init(function: name, file: s.location.map { String($0.split(separator: ":").first ?? "") } ?? s.module,
                     line: s.location.flatMap { Int64($0.split(separator: ":").last ?? "") } ?? 0)
      }
      let out = source.output(output, suffix: uncompressed ? ".pb" : ".pb.gz")
      try Files.writeFile(out, uncompressed ? proto : GoAllocTools.Pprof.gzip(proto), command: "goalloc profile pprof")
      printError("goalloc profile pprof: wrote \(out): \(profile.samples.count) samples; read it with `go tool pprof -top \(out)`")
    }
  }

  struct Folded: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write folded stacks (root;...;leaf bytes), as flamegraph.pl, inferno and speedscope read.")
    @OptionGroup var source: Input
    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write (default: standard output).", valueName: "file"))
    var output: String?

    func run() throws {
      let (profile, symbols) = try source.load("goalloc profile folded")
      let text = profile.folded { ProfileCommand.name($0, symbols) }
      if let output { try Files.writeFile(output, text, command: "goalloc profile folded") } else { print(text, terminator: "") }
    }
  }

  struct FlameGraph: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "flamegraph", abstract: "Draw the live heap as an SVG flame graph (width: estimated live bytes).")
    @OptionGroup var source: Input
    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write (default: the input's name with .svg).", valueName: "file.svg"))
    var output: String?
    @Option(help: "A title for the picture (default: the input file's name).")
    var title: String?

    func run() throws {
      let (profile, symbols) = try source.load("goalloc profile flamegraph")
      let folded = profile.folded { ProfileCommand.name($0, symbols) }
      let total = profile.stacks().reduce(Int64(0)) { $0 + $1.bytes }
      let svg = FlameGraphSVG.render(folded: folded, title: (title ?? "Live heap: \(Files.baseName(source.input))")
                                       + " (\(GoAllocFormat.bytes(Int(total))) estimated)")
      let out = source.output(output, suffix: ".svg")
      try Files.writeFile(out, svg, command: "goalloc profile flamegraph")
      printError("goalloc profile flamegraph: wrote \(out)")
    }
  }

  struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the allocation sites holding the most live bytes.")
    @OptionGroup var source: Input
    @Option(help: "How many sites.") var count = 20

    func validate() throws { if count < 1 { throw ValidationError("--count must be at least 1.") } }

    func run() throws {
      let (profile, symbols) = try source.load("goalloc profile top")
      // A site is the innermost frame: the code that called malloc (or new).
      var bySite: [String: (Int64, Int64)] = [:]
      var total: Int64 = 0
      for s in profile.stacks() {
        let site = s.pcs.first.map { ProfileCommand.name($0, symbols) } ?? "[unknown]"
        let old = bySite[site] ?? (0, 0)
        bySite[site] = (old.0 + s.bytes, old.1 + s.objects)
        total += s.bytes
      }
      print("live heap (estimated from \(profile.samples.count) samples, rate \(profile.rate) B): \(GoAllocFormat.bytes(Int(total)))")
      print("      bytes   share   objects  site")
      for (site, v) in bySite.sorted(by: { $0.value.0 > $1.value.0 }).prefix(count) {
        let share = total > 0 ? 100 * Double(v.0) / Double(total) : 0
        print(pad(GoAllocFormat.bytes(Int(v.0)), 11) + pad(String(format: "%.1f%%", share), 8) + pad("\(v.1)", 10) + "  " + site)
      }
    }

    func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
  }
}
