// `goalloc bench`: GoAlloc side by side with the allocators people would pick instead.
//
// 1. Compiles the C workloads of Benchmarks/workloads/ and the launcher Benchmarks/harness/measure.c
//    into OUT/bin (`cc -O2 -pthread -fno-builtin`), and Benchmarks/go/gowork.go when `go` is
//    installed (Go's own allocator runs the workloads a Go program can mirror). Finds the
//    programs of the application rows (redis, python, sqlite, gcc: BenchApps.swift) and writes
//    their inputs to OUT/apps; a row whose program is missing is skipped with a note.
// 2. Runs every workload under every allocator: glibc (no preload), goalloc (libgoalloc.so) and the
//    peers jemalloc, tcmalloc and mimalloc (Debian's libraries, via LD_PRELOAD; a missing one is
//    skipped with a note). A round runs each allocator once per workload, in an order that rotates
//    from round to round and workload to workload, so the drifting load of a shared machine falls on
//    all of them alike. `measure` forks each run, times it and reads its peak RSS (VmHWM at exit, exact; wait4 as a floor).
// 3. Reports medians over the rounds: wall time, CPU time (user + sys) and peak RSS, each also as a
//    ratio to the best peer (the best of glibc, jemalloc, tcmalloc and mimalloc on that workload),
//    the geometric means of GoAlloc's time ratios against each peer, and the issue-5 targets
//    (and the rate a row reports, such as redis's requests per second).
//    `--callgrind` adds instructions per operation for the single-thread workloads, from two runs
//    at different iteration counts (the difference cancels start-up and set-up).
// 4. Writes OUT/results.md (the tables), OUT/results.svg (bar chart of the ratios) and
//    OUT/results.tsv (every sample), and prints the Markdown.
//
// `goalloc bench gc` (BenchGC.swift) runs the GC benchmark instead: the GC mode against bdwgc.
// This file holds the command (options, and the rounds in order); the rest of the suite is
// BenchWorkloads.swift (what is run), BenchRunner.swift (how one step runs), BenchApps.swift and
// BenchAppInputs.swift (the application rows and their inputs), BenchResults.swift
// (the samples and their medians and ratios), BenchReport.swift (the Markdown) and
// BenchChart.swift (the SVG).

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Benchmark libgoalloc.so against glibc, jemalloc, tcmalloc and mimalloc (`goalloc bench gc`: the collector against bdwgc).",
    discussion: """
      Run from the repository root after `swift build -c release` (Scripts/bench.sh does both). \
      Peers come from Debian (Scripts/install-peers.sh installs them); a missing one is skipped. \
      Writes results.md, results.svg and results.tsv to --out. Workloads: \
      \(Workload.all.filter { $0.app == nil }.map(\.name).joined(separator: ", ")); applications (run \
      when installed): \(Workload.all.filter { $0.app != nil }.map(\.name).joined(separator: ", ")). \


      `goalloc bench gc` benchmarks the GC mode against bdwgc, plain malloc/free and Go instead, on GC workloads \
      (\(GCWorkload.all.map(\.name).joined(separator: ", "))) under the collectors \
      \(GCCollector.all.map(\.name).joined(separator: ", ")) (--allocator picks among them), \
      writing to out/bench-gc unless --out says otherwise (BenchGC.swift). It needs libgc-dev.
      """
  )

  @Argument(help: "`gc`: benchmark the GC mode against bdwgc instead of the allocators.")
  var suite: String?

  @Option(help: "Runs of each workload under each allocator; medians are reported.")
  var runs = 5

  @Flag(help: "Small amounts of work (a smoke test for CI: seconds, not minutes).")
  var quick = false

  @Flag(help: "Also count instructions per operation with valgrind --tool=callgrind (single-thread workloads).")
  var callgrind = false

  @Option(help: "Output folder (created): results.md, results.svg, results.tsv, bin/, logs/ (default out/bench; for gc, out/bench-gc).")
  var out: String?

  /// --out, or the default of the suite being run.
  var outPath: String { out ?? (suite == "gc" ? "out/bench-gc" : "out/bench") }

  @Option(name: .customLong("workload"), help: "Run only this workload (repeatable; for `gc`, one of the GC workloads above).")
  var workloadFilter: [String] = []

  @Option(name: .customLong("allocator"), help: "Run only this allocator (repeatable): glibc, goalloc, jemalloc, tcmalloc, mimalloc, go; for `gc`, one of the collectors above.")
  var allocatorFilter: [String] = []

  @Flag(name: .customLong("no-go"), help: "Leave out Go's allocator even when `go` is installed.")
  var noGo = false

  @Option(help: "Seconds after which a run is killed and counted as failed.")
  var timeout = 300

  @Option(help: "The repository root (holds Benchmarks/workloads/); found from the current directory or this executable.")
  var source: String?

  @Option(help: "The C compiler.")
  var cc = "cc"

  func validate() throws {
    if runs < 1 { throw ValidationError("--runs must be at least 1.") }
    // The private copy of libgoalloc.so under --out goes into LD_PRELOAD, which splits on spaces
    // and colons: such a path would silently measure glibc in the goalloc column.
    if outPath.contains(where: { $0 == " " || $0 == ":" || $0 == "\t" }) {
      throw ValidationError("--out \(outPath): the path may not contain spaces or colons (it goes into LD_PRELOAD).")
    }
    if let suite {
      guard suite == "gc" else { throw ValidationError("unknown benchmark \(suite); known: gc (or none: the allocators)") }
      return try validateGC()
    }
    for name in workloadFilter where !Workload.all.contains(where: { $0.name == name }) {
      throw ValidationError("unknown workload \(name); known: \(Workload.all.map(\.name).joined(separator: ", "))")
    }
    for name in allocatorFilter where !Allocator.knownNames.contains(name) {
      throw ValidationError("unknown allocator \(name); known: \(Allocator.knownNames.joined(separator: ", "))")
    }
  }

  func run() throws {
    if suite == "gc" { return try runGC() }
    let started = Clock.now()
    let root = try locateSourceRoot()
    let outDir = Files.absolute(outPath)
    let bin = Files.join(outDir, "bin"), logs = Files.join(outDir, "logs")
    try Files.makeDirectories(bin, command: "goalloc bench")
    try Files.makeDirectories(logs, command: "goalloc bench")

    // Allocators: glibc and goalloc always; peers when installed.
    var notes: [String] = []
    var allocators: [Allocator] = [Allocator(name: "glibc", preload: nil, isPeer: true)]
    // A private copy of libgoalloc.so: a rebuild during the run (a shared .build) cannot change it.
    let library = try Preload.libraryPath()
    if library.contains("/debug/") {
      notes.append("libgoalloc.so is a debug build (\(library)): build with `swift build -c release`.")
    }
    let frozen = Files.join(bin, "libgoalloc.so")
    guard BenchChild.run(["cp", library, frozen], stdout: nil, stderr: nil).exitCode == 0 else {
      printError("goalloc bench: cannot copy \(library) to \(frozen)")
      throw ExitCode.failure
    }
    allocators.append(Allocator(name: "goalloc", preload: frozen, isPeer: false))
    let libraryID = "\(library), sha256 "
      + (BenchChild.capture(["sha256sum", frozen]).map { String($0.prefix(12)) } ?? "?")
    for (name, path) in Allocator.peerLibraries {
      if access(path, R_OK) == 0 {
        allocators.append(Allocator(name: name, preload: path, isPeer: true))
      } else {
        notes.append("\(name) skipped: \(path) is missing (Scripts/install-peers.sh installs it).")
      }
    }

    // Build the workloads, the launcher and (if Go is here) the Go mirror.
    var workloads = Workload.all.filter { workloadFilter.isEmpty || workloadFilter.contains($0.name) }
    for program in Set(workloads.filter { $0.app == nil }.map(\.program)).sorted() {
      try compileC(Files.join(root, "Benchmarks/workloads/\(program).c"), to: Files.join(bin, program), logs: logs)
    }
    try compileC(Files.join(root, "Benchmarks/harness/measure.c"), to: Files.join(bin, "measure"), logs: logs)
    if !noGo && workloads.contains(where: { $0.goArgs != nil }) {
      if let go = Which.find("go") {
        if buildGo(go: go, source: Files.join(root, "Benchmarks/go/gowork.go"), output: Files.join(bin, "gowork"),
                   outDir: outDir, logs: logs) {
          allocators.append(Allocator(name: "go", preload: nil, isPeer: false, isGo: true))
        } else {
          notes.append("go skipped: building Benchmarks/go/gowork.go failed (see \(logs)/go-build.err).")
        }
      } else {
        notes.append("go skipped: `go` is not installed (Scripts/install-peers.sh --go installs golang-go).")
      }
    }
    let (apps, runnable, appNotes) = try Apps.prepare(workloads, root: root, dir: Files.join(outDir, "apps"), quick: quick)
    workloads = runnable
    notes += appNotes
    if !allocatorFilter.isEmpty { allocators = allocators.filter { allocatorFilter.contains($0.name) } }
    workloads = workloads.filter { w in allocators.contains { $0.runs(w) } }
    for note in notes { printError("goalloc bench: \(note)") }

    // Measure: rounds, each a rotation of the allocators per workload.
    var results = Results(workloads: workloads, allocators: allocators)
    var tsv = "workload\tallocator\tround\twall_s\tcpu_s\tmaxrss_kib\tstatus\trate\n"
    let loadBefore = Machine.loadAverage()
    for round in 0..<runs {
      for (w, workload) in workloads.enumerated() {
        let order = allocators.indices.filter { allocators[$0].runs(workload) }
        guard !order.isEmpty else { continue }
        let shift = (round + w) % order.count
        for a in order[shift...] + order[..<shift] {
          let allocator = allocators[a]
          let run = measure(workload, allocator, bin: bin, logs: logs, apps: apps)
          results.record(run, workload: w, allocator: a)
          tsv += "\(workload.name)\t\(allocator.name)\t\(round + 1)\t\(GoAllocFormat.fixed(run.sample.wallNs / 1e9, 4))\t"
            + "\(GoAllocFormat.fixed(run.sample.cpuUs / 1e6, 4))\t\(Int(run.sample.maxRssKiB))\t\(run.status)\t"
            + "\(run.sample.rate.map { GoAllocFormat.fixed($0, 0) } ?? "")\n"
          printError("[\(round + 1)/\(runs)] \(workload.name.pad(10)) \(allocator.name.pad(9)) "
            + (run.failure == nil
               ? "\(Fmt.seconds(run.sample.wallNs / 1e9).pad(9)) \(Fmt.mib(run.sample.maxRssKiB))"
               : "FAILED: \(run.failure!)"))
        }
      }
    }
    let loadAfter = Machine.loadAverage()

    // Callgrind: instructions per operation, single-thread workloads only.
    var instructions: [String: [String: Double]] = [:]   // workload -> allocator -> Ir per op
    if callgrind {
      if let valgrind = Which.find("valgrind") {
        // Valgrind 3.19 gives up on the DWARF 5 that clang writes for the C targets ("unhandled dwarf2
        // abbrev form"), so callgrind gets a copy without debug info (symbols stay).
        if let g = allocators.firstIndex(where: { $0.name == "goalloc" }), let objcopy = Which.find("objcopy") {
          let nodebug = Files.join(bin, "libgoalloc.nodebug.so")
          if BenchChild.run([objcopy, "--strip-debug", allocators[g].preload!, nodebug], stdout: nil, stderr: nil).exitCode == 0 {
            allocators[g] = Allocator(name: "goalloc", preload: nodebug, isPeer: false)
          }
        }
        for workload in workloads {
          guard let (small, large) = workload.callgrindArgs else { continue }
          // Go's mirror only where it mirrors an API (pool: sync.Pool), not a collected heap.
          for allocator in allocators where allocator.runs(workload) && (!allocator.isGo || workload.goallocOnly) {
            if let ir = instructionsPerOp(valgrind: valgrind, workload, allocator, small: small, large: large,
                                          bin: bin, logs: logs) {
              instructions[workload.name, default: [:]][allocator.name] = ir
              printError("[callgrind] \(workload.name.pad(10)) \(allocator.name.pad(9)) \(GoAllocFormat.fixed(ir, 1)) instructions/op")
            } else {
              printError("[callgrind] \(workload.name.pad(10)) \(allocator.name.pad(9)) FAILED (see \(logs))")
            }
          }
        }
      } else {
        notes.append("--callgrind skipped: valgrind is not installed (Scripts/install-peers.sh installs it).")
      }
    }

    let elapsed = Clock.now() - started
    let context = Report.Context(
      runs: runs, quick: quick, elapsedS: elapsed, loadBefore: loadBefore, loadAfter: loadAfter, notes: notes,
      command: CommandLine.arguments.dropFirst().joined(separator: " "),
      revision: BenchChild.capture(["git", "-C", root, "describe", "--always", "--dirty"])?.trimmed ?? "unknown",
      library: libraryID,
      peerVersions: Allocator.packageVersions(allocators))
    let markdown = Report.markdown(results, instructions: instructions, context: context)
    try Files.writeFile(Files.join(outDir, "results.md"), markdown, command: "goalloc bench")
    try Files.writeFile(Files.join(outDir, "results.svg"), Chart.svg(results), command: "goalloc bench")
    try Files.writeFile(Files.join(outDir, "results.tsv"), tsv, command: "goalloc bench")
    print(markdown)
    printError("goalloc bench: wrote \(outDir)/results.md, results.svg, results.tsv in \(GoAllocFormat.fixed(elapsed, 0)) s")
    if results.anyFailure { throw ExitCode(1) }
  }
}
