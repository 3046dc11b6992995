// `goalloc bench`: GoAlloc side by side with the allocators people would pick instead.
//
// 1. Compiles the C workloads of Benchmarks/workloads/ and the launcher Benchmarks/harness/measure.c
//    into OUT/bin (`cc -O2 -pthread -fno-builtin`), and Benchmarks/go/gowork.go when `go` is
//    installed (Go's own allocator runs the workloads a Go program can mirror).
// 2. Runs every workload under every allocator: glibc (no preload), goalloc (libgoalloc.so) and the
//    peers jemalloc, tcmalloc and mimalloc (Debian's libraries, via LD_PRELOAD; a missing one is
//    skipped with a note). A round runs each allocator once per workload, in an order that rotates
//    from round to round and workload to workload, so the drifting load of a shared machine falls on
//    all of them alike. `measure` forks each run, times it and reads its peak RSS (VmHWM at exit, exact; wait4 as a floor).
// 3. Reports medians over the rounds: wall time, CPU time (user + sys) and peak RSS, each also as a
//    ratio to the best peer (the best of glibc, jemalloc, tcmalloc and mimalloc on that workload),
//    the geometric means of GoAlloc's time ratios against each peer, and the issue-5 targets.
//    `--callgrind` adds instructions per operation for the single-thread workloads, from two runs
//    at different iteration counts (the difference cancels start-up and set-up).
// 4. Writes OUT/results.md (the tables), OUT/results.svg (bar chart of the ratios) and
//    OUT/results.tsv (every sample), and prints the Markdown.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Benchmark libgoalloc.so against glibc, jemalloc, tcmalloc and mimalloc.",
    discussion: """
      Run from the repository root after `swift build -c release` (Scripts/bench.sh does both). \
      Peers come from Debian (Scripts/install-peers.sh installs them); a missing one is skipped. \
      Writes results.md, results.svg and results.tsv to --out. Workloads: \
      \(Workload.all.map(\.name).joined(separator: ", ")).
      """
  )

  @Option(help: "Runs of each workload under each allocator; medians are reported.")
  var runs = 5

  @Flag(help: "Small amounts of work (a smoke test for CI: seconds, not minutes).")
  var quick = false

  @Flag(help: "Also count instructions per operation with valgrind --tool=callgrind (single-thread workloads).")
  var callgrind = false

  @Option(help: "Output folder (created): results.md, results.svg, results.tsv, bin/, logs/.")
  var out = "out/bench"

  @Option(name: .customLong("workload"), help: "Run only this workload (repeatable).")
  var workloadFilter: [String] = []

  @Option(name: .customLong("allocator"), help: "Run only this allocator (repeatable): glibc, goalloc, jemalloc, tcmalloc, mimalloc, go.")
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
    for name in workloadFilter where !Workload.all.contains(where: { $0.name == name }) {
      throw ValidationError("unknown workload \(name); known: \(Workload.all.map(\.name).joined(separator: ", "))")
    }
    for name in allocatorFilter where !Allocator.knownNames.contains(name) {
      throw ValidationError("unknown allocator \(name); known: \(Allocator.knownNames.joined(separator: ", "))")
    }
  }

  func run() throws {
    let started = Clock.now()
    let root = try locateSourceRoot()
    let outDir = out.hasPrefix("/") ? out : Path.join(Path.cwd(), out)
    let bin = Path.join(outDir, "bin"), logs = Path.join(outDir, "logs")
    try Path.makeDirectories(bin)
    try Path.makeDirectories(logs)

    // Allocators: glibc and goalloc always; peers when installed.
    var notes: [String] = []
    var allocators: [Allocator] = [Allocator(name: "glibc", preload: nil, isPeer: true)]
    // A private copy of libgoalloc.so: a rebuild during the run (a shared .build) cannot change it.
    let library = try Preload.libraryPath()
    if library.contains("/debug/") {
      notes.append("libgoalloc.so is a debug build (\(library)): build with `swift build -c release`.")
    }
    let frozen = Path.join(bin, "libgoalloc.so")
    guard Proc.exitCode(Proc.run(["cp", library, frozen], stdout: nil, stderr: nil)) == 0 else {
      printError("goalloc bench: cannot copy \(library) to \(frozen)")
      throw ExitCode.failure
    }
    allocators.append(Allocator(name: "goalloc", preload: frozen, isPeer: false))
    let libraryID = "\(library), sha256 "
      + (Proc.capture(["sha256sum", frozen]).map { String($0.prefix(12)) } ?? "?")
    for (name, path) in Allocator.peerLibraries {
      if access(path, R_OK) == 0 {
        allocators.append(Allocator(name: name, preload: path, isPeer: true))
      } else {
        notes.append("\(name) skipped: \(path) is missing (Scripts/install-peers.sh installs it).")
      }
    }

    // Build the workloads, the launcher and (if Go is here) the Go mirror.
    var workloads = Workload.all.filter { workloadFilter.isEmpty || workloadFilter.contains($0.name) }
    for program in Set(workloads.map(\.program)).sorted() {
      try compileC(Path.join(root, "Benchmarks/workloads/\(program).c"), to: Path.join(bin, program), logs: logs)
    }
    try compileC(Path.join(root, "Benchmarks/harness/measure.c"), to: Path.join(bin, "measure"), logs: logs)
    if !noGo && workloads.contains(where: { $0.goArgs != nil }) {
      if let go = Proc.which("go") {
        if buildGo(go: go, source: Path.join(root, "Benchmarks/go/gowork.go"), output: Path.join(bin, "gowork"),
                   outDir: outDir, logs: logs) {
          allocators.append(Allocator(name: "go", preload: nil, isPeer: false, isGo: true))
        } else {
          notes.append("go skipped: building Benchmarks/go/gowork.go failed (see \(logs)/go-build.err).")
        }
      } else {
        notes.append("go skipped: `go` is not installed (Scripts/install-peers.sh --go installs golang-go).")
      }
    }
    if !allocatorFilter.isEmpty { allocators = allocators.filter { allocatorFilter.contains($0.name) } }
    workloads = workloads.filter { w in allocators.contains { !$0.isGo || w.goArgs != nil } }
    for note in notes { printError("goalloc bench: \(note)") }

    // Measure: rounds, each a rotation of the allocators per workload.
    var results = Results(workloads: workloads, allocators: allocators)
    var tsv = "workload\tallocator\tround\twall_s\tcpu_s\tmaxrss_kib\tstatus\n"
    let loadBefore = Machine.loadAverage()
    for round in 0..<runs {
      for (w, workload) in workloads.enumerated() {
        let order = allocators.indices.filter { allocators[$0].runs(workload) }
        guard !order.isEmpty else { continue }
        let shift = (round + w) % order.count
        for a in order[shift...] + order[..<shift] {
          let allocator = allocators[a]
          let run = measure(workload, allocator, bin: bin, logs: logs)
          results.record(run, workload: w, allocator: a)
          tsv += "\(workload.name)\t\(allocator.name)\t\(round + 1)\t\(Fmt.fixed(run.sample.wallNs / 1e9, 4))\t"
            + "\(Fmt.fixed(run.sample.cpuUs / 1e6, 4))\t\(Int(run.sample.maxRssKiB))\t\(run.status)\n"
          printError("[\(round + 1)/\(runs)] \(workload.name.padding(9)) \(allocator.name.padding(9)) "
            + (run.failure == nil
               ? "\(Fmt.seconds(run.sample.wallNs / 1e9).padding(9)) \(Fmt.mib(run.sample.maxRssKiB))"
               : "FAILED: \(run.failure!)"))
        }
      }
    }
    let loadAfter = Machine.loadAverage()

    // Callgrind: instructions per operation, single-thread workloads only.
    var instructions: [String: [String: Double]] = [:]   // workload -> allocator -> Ir per op
    if callgrind {
      if let valgrind = Proc.which("valgrind") {
        // Valgrind 3.19 gives up on the DWARF 5 that clang writes for the C targets ("unhandled dwarf2
        // abbrev form"), so callgrind gets a copy without debug info (symbols stay).
        if let g = allocators.firstIndex(where: { $0.name == "goalloc" }), let objcopy = Proc.which("objcopy") {
          let nodebug = Path.join(bin, "libgoalloc.nodebug.so")
          if Proc.exitCode(Proc.run([objcopy, "--strip-debug", allocators[g].preload!, nodebug], stdout: nil, stderr: nil)) == 0 {
            allocators[g] = Allocator(name: "goalloc", preload: nodebug, isPeer: false)
          }
        }
        for workload in workloads {
          guard let (small, large) = workload.callgrindArgs else { continue }
          for allocator in allocators where !allocator.isGo {
            if let ir = instructionsPerOp(valgrind: valgrind, workload, allocator, small: small, large: large,
                                          bin: bin, logs: logs) {
              instructions[workload.name, default: [:]][allocator.name] = ir
              printError("[callgrind] \(workload.name.padding(9)) \(allocator.name.padding(9)) \(Fmt.fixed(ir, 1)) instructions/op")
            } else {
              printError("[callgrind] \(workload.name.padding(9)) \(allocator.name.padding(9)) FAILED (see \(logs))")
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
      revision: Proc.capture(["git", "-C", root, "describe", "--always", "--dirty"])?.trimmed ?? "unknown",
      library: libraryID,
      peerVersions: Allocator.packageVersions(allocators))
    let markdown = Report.markdown(results, instructions: instructions, context: context)
    try Path.write(Path.join(outDir, "results.md"), markdown)
    try Path.write(Path.join(outDir, "results.svg"), Chart.svg(results))
    try Path.write(Path.join(outDir, "results.tsv"), tsv)
    print(markdown)
    printError("goalloc bench: wrote \(outDir)/results.md, results.svg, results.tsv in \(Fmt.fixed(elapsed, 0)) s")
    if results.anyFailure { throw ExitCode(1) }
  }

  // MARK: Steps

  /// The folder that holds Benchmarks/workloads/: --source, the current directory or one of its
  /// parents, or a parent of this executable's folder (.build/<triple>/release/goalloc-cli).
  func locateSourceRoot() throws -> String {
    if let source { return source.hasPrefix("/") ? source : Path.join(Path.cwd(), source) }
    var candidates: [String] = []
    var dir = Path.cwd()
    for _ in 0..<4 { candidates.append(dir); dir = Path.dirname(dir) }
    if let exe = Preload.readLink("/proc/self/exe") {
      dir = Path.dirname(exe)
      for _ in 0..<5 { candidates.append(dir); dir = Path.dirname(dir) }
    }
    for candidate in candidates where access(Path.join(candidate, "Benchmarks/workloads/pair.c"), R_OK) == 0 {
      return candidate
    }
    printError("goalloc bench: Benchmarks/workloads/ not found; run from the repository root or pass --source")
    throw ExitCode.failure
  }

  func compileC(_ source: String, to output: String, logs: String) throws {
    let err = Path.join(logs, "cc-\(Path.basename(output)).err")
    let status = Proc.run([cc, "-O2", "-pthread", "-fno-builtin", "-o", output, source], stdout: err, stderr: err)
    guard Proc.exitCode(status) == 0 else {
      printError("goalloc bench: \(cc) failed on \(source):\n" + (Path.read(err) ?? ""))
      throw ExitCode.failure
    }
  }

  func buildGo(go: String, source: String, output: String, outDir: String, logs: String) -> Bool {
    guard access(source, R_OK) == 0 else { return false }
    let err = Path.join(logs, "go-build.err")
    let cache = Path.join(outDir, "gocache")
    let status = Proc.run([go, "build", "-o", output, source], stdout: err, stderr: err,
                          extraEnv: ["GOCACHE=\(cache)", "GOPATH=\(Path.join(outDir, "gopath"))", "GO111MODULE=off",
                                     "GOFLAGS=", "CGO_ENABLED=0"])
    return Proc.exitCode(status) == 0
  }

  struct Run {
    var sample = Sample()
    var status = ""
    var failure: String?
    var line = ""
  }

  /// One timed run: `measure REPORT TIMEOUT PRELOAD PROGRAM ARGS...`, output checked.
  func measure(_ workload: Workload, _ allocator: Allocator, bin: String, logs: String) -> Run {
    let base = Path.join(logs, "\(workload.name).\(allocator.name)")
    let report = base + ".report", outFile = base + ".out", errFile = base + ".err"
    let program = allocator.isGo ? Path.join(bin, "gowork") : Path.join(bin, workload.program)
    let args = allocator.isGo ? [workload.program] + workload.arguments(quick: quick, go: true)
                              : workload.arguments(quick: quick, go: false)
    unlink(report)
    let status = Proc.run([Path.join(bin, "measure"), report, String(timeout), allocator.preload ?? "-", program] + args,
                          stdout: outFile, stderr: errFile)
    var run = Run()
    guard Proc.exitCode(status) == 0, let fields = Path.read(report).map(Report.parseFields) else {
      run.failure = "measure failed (status \(status))"
      return run
    }
    run.sample = Sample(wallNs: Double(fields["wall_ns"] ?? "") ?? 0,
                        cpuUs: (Double(fields["user_us"] ?? "") ?? 0) + (Double(fields["sys_us"] ?? "") ?? 0),
                        maxRssKiB: Double(fields["maxrss_kib"] ?? "") ?? 0)
    run.status = fields["status"] ?? "?"
    let output = Path.read(outFile) ?? ""
    run.line = output.split(separator: "\n").last { $0.hasPrefix("\(workload.program):") }.map(String.init) ?? ""
    if run.status != "exit:0" {
      let err = (Path.read(errFile) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
      run.failure = "\(run.status)" + (err.isEmpty ? "" : ": \(err)")
    } else if run.line.isEmpty {
      run.failure = "no result line from \(workload.program)"
    }
    return run
  }

  /// Instructions per operation: (Ir(large) - Ir(small)) / (ops(large) - ops(small)).
  func instructionsPerOp(valgrind: String, _ workload: Workload, _ allocator: Allocator,
                         small: [String], large: [String], bin: String, logs: String) -> Double? {
    var points: [(ir: Double, ops: Double)] = []
    for (k, args) in [small, large].enumerated() {
      let base = Path.join(logs, "callgrind.\(workload.name).\(allocator.name).\(k)")
      let status = Proc.run([valgrind, "--tool=callgrind", "--callgrind-out-file=\(base).cg",
                             Path.join(bin, workload.program)] + args,
                            stdout: base + ".out", stderr: base + ".err",
                            extraEnv: allocator.preload.map { ["LD_PRELOAD=\($0)"] } ?? [])
      unlink(base + ".cg")
      guard Proc.exitCode(status) == 0,
            let err = Path.read(base + ".err"), let out = Path.read(base + ".out"),
            let irText = err.split(separator: "\n").last(where: { $0.contains("Collected :") })?
              .split(separator: ":").last?.trimmed,
            let ir = Double(irText),
            let ops = Report.parseFields(String(out.split(separator: "\n").last { $0.contains("ops=") } ?? ""))["ops"]
              .flatMap(Double.init)
      else { return nil }
      points.append((ir, ops))
    }
    guard points[1].ops > points[0].ops else { return nil }
    return (points[1].ir - points[0].ir) / (points[1].ops - points[0].ops)
  }
}

// MARK: - What is run

/// A workload: one C program (Benchmarks/workloads/PROGRAM.c) and its arguments.
struct Workload: Sendable {
  let name: String
  let program: String
  let args: [String]
  let quickArgs: [String]
  let summary: String
  /// Two argument lists whose runs differ only in the number of operations (for --callgrind).
  var callgrindArgs: ([String], [String])? = nil
  /// Arguments for Benchmarks/go/gowork.go's mirror of this workload, when there is one.
  var goArgs: [String]? = nil
  var goQuickArgs: [String]? = nil

  func arguments(quick: Bool, go: Bool) -> [String] {
    go ? (quick ? goQuickArgs ?? goArgs! : goArgs!) : (quick ? quickArgs : args)
  }

  static let all: [Workload] = [
    Workload(name: "pair", program: "pair", args: ["50000000", "64"], quickArgs: ["1000000", "64"],
             summary: "1 thread: malloc(64) + write + free, 50 M times",
             callgrindArgs: (["200000", "64"], ["400000", "64"]),
             goArgs: ["50000000", "64"], goQuickArgs: ["1000000", "64"]),
    Workload(name: "pairmix", program: "pair", args: ["50000000", "0"], quickArgs: ["1000000", "0"],
             summary: "1 thread: malloc/free pairs cycling through 256 sizes of 8..1023 B, 50 M times",
             callgrindArgs: (["200000", "0"], ["400000", "0"])),
    Workload(name: "churn", program: "churn", args: ["2000000", "100000"], quickArgs: ["100000", "10000"],
             summary: "1 thread: 100 k live blocks of 8 B..4 KiB, 2 M random replaces, tags checked before each free",
             callgrindArgs: (["100000", "20000"], ["200000", "20000"]),
             goArgs: ["2000000", "100000"], goQuickArgs: ["100000", "10000"]),
    Workload(name: "prodcons", program: "prodcons", args: ["2", "3000000"], quickArgs: ["2", "100000"],
             summary: "2 producer/consumer pairs (4 threads): 3 M blocks of 16 B..1 KiB per pair, all freed by the other thread"),
    Workload(name: "realloc", program: "realloc", args: ["2", "64"], quickArgs: ["1", "16", "262144"],
             summary: "1 thread: 64 buffers grown side by side by 16..256 B steps to 1 MiB, twice each",
             callgrindArgs: (["1", "4"], ["2", "4"])),
    Workload(name: "larson", program: "larson", args: ["4", "100", "20000"], quickArgs: ["4", "5", "5000"],
             summary: "4 lanes x 100 thread generations x 20 k replaces (16 B..1 KiB); each thread hands its blocks to its successor and exits"),
    Workload(name: "xmalloc", program: "xmalloc", args: ["8", "8000000"], quickArgs: ["8", "400000"],
             summary: "8 threads, 8 M replaces in all (16 B..2 KiB); 1 block in 32 freed by the next thread"),
    Workload(name: "frag", program: "frag", args: ["1024", "512"], quickArgs: ["64", "32"],
             summary: "fill 1 GiB with 16..256 B blocks, free a random 90 %, then 512 MiB of 256 KiB..4 MiB blocks"),
    Workload(name: "large", program: "large", args: ["20000", "16"], quickArgs: ["1000", "16"],
             summary: "16 live blocks of 64 KiB..4 MiB, 20 k random replaces, every page touched"),
  ]
}

struct Allocator: Sendable {
  let name: String
  let preload: String?
  /// A peer counts for "best peer": glibc, jemalloc, tcmalloc, mimalloc (not goalloc, not Go).
  let isPeer: Bool
  var isGo = false

  func runs(_ workload: Workload) -> Bool { !isGo || workload.goArgs != nil }

  static let peerLibraries: [(String, String)] = [
    ("jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
    ("tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
    ("mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"),
  ]
  static let knownNames = ["glibc", "goalloc", "jemalloc", "tcmalloc", "mimalloc", "go"]
  static let debianPackages = ["glibc": "libc6", "jemalloc": "libjemalloc2", "tcmalloc": "libtcmalloc-minimal4",
                               "mimalloc": "libmimalloc2.0", "go": "golang-go"]

  /// "jemalloc 5.3.0-1" and so on, from dpkg (empty when dpkg is not there).
  static func packageVersions(_ allocators: [Allocator]) -> [String] {
    allocators.compactMap { a in
      guard let pkg = debianPackages[a.name],
            let v = Proc.capture(["dpkg-query", "-W", "-f", "${Version}", pkg])?.trimmed, !v.isEmpty else { return nil }
      return "\(a.name) (\(pkg) \(v))"
    }
  }
}

struct Sample: Sendable {
  var wallNs = 0.0
  var cpuUs = 0.0
  var maxRssKiB = 0.0
}

// MARK: - Results

struct Results {
  struct Cell {
    var samples: [Sample] = []
    var failures: [String] = []
    var line = ""
    var attempted = false
  }

  let workloads: [Workload]
  let allocators: [Allocator]
  var cells: [[Cell]]

  init(workloads: [Workload], allocators: [Allocator]) {
    self.workloads = workloads
    self.allocators = allocators
    cells = Array(repeating: Array(repeating: Cell(), count: allocators.count), count: workloads.count)
  }

  mutating func record(_ run: BenchCommand.Run, workload w: Int, allocator a: Int) {
    cells[w][a].attempted = true
    if let failure = run.failure {
      cells[w][a].failures.append(failure)
    } else {
      cells[w][a].samples.append(run.sample)
      cells[w][a].line = run.line
    }
  }

  var anyFailure: Bool { cells.contains { $0.contains { !$0.failures.isEmpty } } }

  enum Metric { case wall, cpu, rss }

  /// The median of a metric for one cell (seconds for times, KiB for RSS); nil when no run
  /// succeeded or any run failed (a failing allocator gets no number).
  func median(_ metric: Metric, _ w: Int, _ a: Int) -> Double? {
    let cell = cells[w][a]
    guard !cell.samples.isEmpty, cell.failures.isEmpty else { return nil }
    let values = cell.samples.map { s -> Double in
      switch metric {
      case .wall: return s.wallNs / 1e9
      case .cpu: return s.cpuUs / 1e6
      case .rss: return s.maxRssKiB
      }
    }
    return Stats.median(values)
  }

  /// The peer with the lowest median on a workload.
  func bestPeer(_ metric: Metric, _ w: Int) -> (index: Int, value: Double)? {
    var best: (Int, Double)?
    for (a, allocator) in allocators.enumerated() where allocator.isPeer {
      if let v = median(metric, w, a), v > 0, best == nil || v < best!.1 { best = (a, v) }
    }
    return best
  }

  func ratio(_ metric: Metric, _ w: Int, _ a: Int) -> Double? {
    guard let v = median(metric, w, a), let best = bestPeer(metric, w) else { return nil }
    return v / best.value
  }

  /// Geometric mean over workloads of allocator a's median divided by allocator b's (b nil: best peer).
  func geomean(_ metric: Metric, _ a: Int, against b: Int?) -> (value: Double, count: Int)? {
    var logs: [Double] = []
    for w in workloads.indices {
      guard let x = median(metric, w, a), x > 0 else { continue }
      let y = b.map { median(metric, w, $0) } ?? bestPeer(metric, w)?.value
      if let y, y > 0 { logs.append(log(x / y)) }
    }
    guard !logs.isEmpty else { return nil }
    return (exp(logs.reduce(0, +) / Double(logs.count)), logs.count)
  }

  func index(of name: String) -> Int? { allocators.firstIndex { $0.name == name } }
}

enum Stats {
  static func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }
}

// MARK: - Markdown report

enum Report {
  struct Context {
    var runs: Int
    var quick: Bool
    var elapsedS: Double
    var loadBefore: String
    var loadAfter: String
    var notes: [String]
    var command: String
    var revision: String
    var library: String
    var peerVersions: [String]
  }

  /// "k=v k=v ..." into a dictionary (values end at the next space).
  static func parseFields(_ line: String) -> [String: String] {
    var fields: [String: String] = [:]
    for word in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
      if let eq = word.firstIndex(of: "=") {
        fields[String(word[..<eq])] = String(word[word.index(after: eq)...])
      }
    }
    return fields
  }

  static func markdown(_ r: Results, instructions: [String: [String: Double]], context c: Context) -> String {
    var md = "# GoAlloc benchmark results\n\n"
    md += "- Date: \(Machine.date()); GoAlloc revision \(c.revision); command `goalloc \(c.command)`\n"
    md += "- libgoalloc.so: \(c.library)\n"
    md += "- Machine: \(Machine.description())\n"
    md += "- Load average (1, 5, 15 min) before: \(c.loadBefore); after: \(c.loadAfter)\n"
    md += "- \(c.runs) runs per workload and allocator, allocators alternating within each round; medians shown"
    md += c.quick ? " (--quick: small sizes, a smoke test, not a measurement).\n" : ".\n"
    md += "- Suite time: \(Fmt.fixed(c.elapsedS, 0)) s. Peers: \(c.peerVersions.isEmpty ? "see below" : c.peerVersions.joined(separator: ", ")).\n"
    md += "- Ratios are to the best peer on the row (the best of glibc, jemalloc, tcmalloc, mimalloc; marked **bold**); lower is better.\n"
    for note in c.notes { md += "- Note: \(note)\n" }

    md += "\n## Median wall time (ratio to the best peer)\n\n" + table(r, .wall)
    md += "\n## Median peak RSS (ratio to the best peer)\n\n" + table(r, .rss)
    md += "\n## Median CPU time, user + sys (ratio to the best peer)\n\n" + table(r, .cpu)
    md += "\n## GoAlloc against each peer: geometric mean over the workloads of GoAlloc / peer\n\n"
    md += geomeanTable(r)
    if !instructions.isEmpty { md += "\n## Instructions per operation (callgrind)\n\n" + instructionTable(r, instructions) }
    md += "\n## Targets of issue 5\n\n" + targets(r, instructions: instructions)
    md += "\n## Workloads\n\n| workload | what it does |\n| --- | --- |\n"
    for w in r.workloads { md += "| \(w.name) | \(w.summary) |\n" }
    md += "\n## Result lines printed by the workloads (last successful run)\n\n```\n"
    for (w, workload) in r.workloads.enumerated() {
      for (a, allocator) in r.allocators.enumerated() where !r.cells[w][a].line.isEmpty {
        md += "\(workload.name.padding(9)) \(allocator.name.padding(9)) \(r.cells[w][a].line)\n"
      }
    }
    md += "```\n"
    var failures = ""
    for (w, workload) in r.workloads.enumerated() {
      for (a, allocator) in r.allocators.enumerated() where !r.cells[w][a].failures.isEmpty {
        let cell = r.cells[w][a]
        failures += "- \(workload.name) under \(allocator.name): \(cell.failures.count) of "
          + "\(cell.failures.count + cell.samples.count) runs failed; first: `\(cell.failures[0])`\n"
      }
    }
    if !failures.isEmpty { md += "\n## Failures\n\n" + failures }
    return md
  }

  static func format(_ metric: Results.Metric, _ v: Double) -> String {
    metric == .rss ? Fmt.mib(v) : Fmt.seconds(v)
  }

  static func table(_ r: Results, _ metric: Results.Metric) -> String {
    var md = "| workload | " + r.allocators.map(\.name).joined(separator: " | ") + " |\n"
    md += "| --- |" + String(repeating: " ---: |", count: r.allocators.count) + "\n"
    for (w, workload) in r.workloads.enumerated() {
      let best = r.bestPeer(metric, w)?.index
      var row = "| \(workload.name) |"
      for a in r.allocators.indices {
        let cell = r.cells[w][a]
        if !cell.attempted { row += " - |"; continue }
        if !cell.failures.isEmpty { row += " FAILED (\(cell.failures.count)/\(cell.failures.count + cell.samples.count)) |"; continue }
        guard let v = r.median(metric, w, a) else { row += " - |"; continue }
        let text = "\(format(metric, v)) (\(r.ratio(metric, w, a).map { Fmt.ratio($0) } ?? "?"))"
        row += a == best ? " **\(text)** |" : " \(text) |"
      }
      md += row + "\n"
    }
    return md
  }

  static func geomeanTable(_ r: Results) -> String {
    guard let g = r.index(of: "goalloc") else { return "(goalloc was not run)\n" }
    let peers = r.allocators.indices.filter { r.allocators[$0].isPeer }
    var md = "| metric | " + peers.map { "vs \(r.allocators[$0].name)" }.joined(separator: " | ") + " | vs best peer |\n"
    md += "| --- |" + String(repeating: " ---: |", count: peers.count + 1) + "\n"
    for (label, metric) in [("wall time", Results.Metric.wall), ("CPU time", .cpu), ("peak RSS", .rss)] {
      md += "| \(label) |"
      for p in peers { md += " \(r.geomean(metric, g, against: p).map { Fmt.ratio($0.value) } ?? "-") |" }
      md += " \(r.geomean(metric, g, against: nil).map { Fmt.ratio($0.value) } ?? "-") |\n"
    }
    return md
  }

  static func instructionTable(_ r: Results, _ ir: [String: [String: Double]]) -> String {
    let names = r.allocators.filter { !$0.isGo }.map(\.name)
    var md = "Whole-program instructions per operation, from two runs at different iteration counts "
    md += "(workload code included, the same for every allocator; an operation is one malloc/free pair, "
    md += "one replace, or one realloc call). Ratio to glibc in brackets.\n\n"
    md += "| workload | " + names.joined(separator: " | ") + " |\n| --- |" + String(repeating: " ---: |", count: names.count) + "\n"
    for workload in r.workloads {
      guard let row = ir[workload.name] else { continue }
      md += "| \(workload.name) |"
      for name in names {
        if let v = row[name] {
          md += " \(Fmt.fixed(v, 1))" + (row["glibc"].map { " (\(Fmt.ratio(v / $0)))" } ?? "") + " |"
        } else {
          md += " - |"
        }
      }
      md += "\n"
    }
    return md
  }

  /// The targets of issue 5, each judged from this run's numbers.
  static func targets(_ r: Results, instructions: [String: [String: Double]]) -> String {
    guard let g = r.index(of: "goalloc") else { return "(goalloc was not run)\n" }
    var md = ""
    func verdict(_ ok: Bool) -> String { ok ? "met" : "**missed**" }
    if let w = r.workloads.firstIndex(where: { $0.name == "pair" }), let t = r.median(.wall, w, g) {
      if let gl = r.index(of: "glibc"), let tg = r.median(.wall, w, gl) {
        md += "- pair, time vs glibc: \(Fmt.seconds(t)) vs \(Fmt.seconds(tg)) (\(Fmt.ratio(t / tg))): \(verdict(t < tg))\n"
      }
      if let ir = instructions["pair"], let ig = ir["goalloc"], let il = ir["glibc"] {
        md += "- pair, instructions vs glibc: \(Fmt.fixed(ig, 1)) vs \(Fmt.fixed(il, 1)) per pair: \(verdict(ig < il))\n"
      } else {
        md += "- pair, instructions vs glibc: not measured (run with --callgrind)\n"
      }
      if let mi = r.index(of: "mimalloc"), let tm = r.median(.wall, w, mi) {
        md += "- pair, time within 1.2x of mimalloc: \(Fmt.ratio(t / tm)): \(verdict(t / tm <= 1.2))\n"
      }
    }
    for (name, limit) in [("jemalloc", 1.0), ("tcmalloc", 1.0), ("mimalloc", 1.15)] {
      if let p = r.index(of: name), let gm = r.geomean(.wall, g, against: p) {
        md += "- geometric mean of time ratios vs \(name) <= \(Fmt.fixed(limit, 2)): \(Fmt.ratio(gm.value)) over \(gm.count) workloads: \(verdict(gm.value <= limit))\n"
      }
    }
    var slow: [String] = [], fat: [String] = [], failed: [String] = []
    for (w, workload) in r.workloads.enumerated() {
      if !r.cells[w][g].failures.isEmpty { failed.append(workload.name) }
      if let x = r.ratio(.wall, w, g), x > 1.5 { slow.append("\(workload.name) \(Fmt.ratio(x))") }
      if let x = r.ratio(.rss, w, g), x > 1.25 { fat.append("\(workload.name) \(Fmt.ratio(x))") }
    }
    md += "- no workload more than 1.5x slower than the best peer: \(slow.isEmpty ? "met" : "**missed**: " + slow.joined(separator: ", "))\n"
    md += "- peak RSS within 1.25x of the best peer on every workload: \(fat.isEmpty ? "met" : "**missed**: " + fat.joined(separator: ", "))\n"
    if !failed.isEmpty { md += "- GoAlloc **failed** on: \(failed.joined(separator: ", ")) (no numbers for those)\n" }
    return md
  }
}

// MARK: - SVG chart

enum Chart {
  static let colours = ["glibc": "#8c8c8c", "goalloc": "#d62728", "jemalloc": "#1f77b4",
                        "tcmalloc": "#2ca02c", "mimalloc": "#ff7f0e", "go": "#17becf"]

  /// Two panels (wall time, peak RSS), each with a group of bars per workload: one bar per
  /// allocator, its height the ratio to the best peer, a dashed line at 1.0.
  static func svg(_ r: Results) -> String {
    let n = r.allocators.count, bar = 13.0, groupGap = 22.0
    let groupWidth = Double(n) * bar + groupGap
    let left = 74.0, right = 16.0, top = 92.0, panelHeight = 230.0, panelGap = 96.0
    let width = left + right + groupWidth * Double(r.workloads.count)
    let height = top + 2 * panelHeight + panelGap + 60
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
    s += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n"
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    s += "<text x=\"\(Int(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
    s += "GoAlloc vs peers: median of runs, ratio to the best peer per workload (lower is better)</text>\n"
    // Legend.
    var x = left
    for allocator in r.allocators {
      s += "<rect x=\"\(x)\" y=\"36\" width=\"14\" height=\"14\" fill=\"\(colours[allocator.name] ?? "#444")\"/>"
      s += "<text x=\"\(x + 19)\" y=\"48\">\(allocator.name)</text>\n"
      x += 28 + Double(allocator.name.count) * 7.5
    }
    s += "<text x=\"\(x + 10)\" y=\"48\" fill=\"#555\">(best peer = best of glibc, jemalloc, tcmalloc, mimalloc)</text>\n"
    for (p, (metric, title)) in [(Results.Metric.wall, "Wall time / best peer"), (.rss, "Peak RSS / best peer")].enumerated() {
      let y0 = top + Double(p) * (panelHeight + panelGap)
      s += panel(r, metric: metric, title: title, left: left, y0: y0, height: panelHeight,
                 width: width - left - right, bar: bar, groupWidth: groupWidth)
    }
    s += "<text x=\"\(Int(width / 2))\" y=\"\(Int(height - 12))\" text-anchor=\"middle\">workload</text>\n"
    return s + "</svg>\n"
  }

  static func panel(_ r: Results, metric: Results.Metric, title: String, left: Double, y0: Double, height: Double,
                    width: Double, bar: Double, groupWidth: Double) -> String {
    var maxRatio = 1.0
    for w in r.workloads.indices { for a in r.allocators.indices { maxRatio = max(maxRatio, r.ratio(metric, w, a) ?? 0) } }
    let cap = min(4.0, max(1.5, ((maxRatio + 0.1) * 2).rounded(.up) / 2))   // headroom, in steps of 0.5
    let yOf = { (v: Double) -> Double in y0 + height - min(v, cap) / cap * height }
    var s = "<text x=\"\(left)\" y=\"\(y0 - 22)\" font-size=\"13\" font-weight=\"bold\">\(title)"
    s += "<tspan dx=\"8\" font-weight=\"normal\" fill=\"#555\">(bars above \(Fmt.fixed(cap, 1)) are cut; their value is printed on top)</tspan></text>\n"
    // Axes, grid and ticks.
    let step = cap <= 2 ? 0.25 : 0.5
    var t = 0.0
    while t <= cap + 1e-9 {
      let y = yOf(t)
      s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + width)\" y2=\"\(y)\" stroke=\"#e4e4e4\"/>"
      s += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(Fmt.fixed(t, 2))</text>\n"
      t += step
    }
    s += "<line x1=\"\(left)\" y1=\"\(yOf(1))\" x2=\"\(left + width)\" y2=\"\(yOf(1))\" stroke=\"#000\" stroke-dasharray=\"5,4\"/>\n"
    s += "<line x1=\"\(left)\" y1=\"\(y0)\" x2=\"\(left)\" y2=\"\(y0 + height)\" stroke=\"#000\"/>"
    s += "<line x1=\"\(left)\" y1=\"\(y0 + height)\" x2=\"\(left + width)\" y2=\"\(y0 + height)\" stroke=\"#000\"/>\n"
    let yMid = y0 + height / 2
    s += "<text transform=\"translate(\(left - 46),\(yMid)) rotate(-90)\" text-anchor=\"middle\">"
    s += "\(metric == .rss ? "peak RSS" : "time") ratio to best peer</text>\n"
    // Bars.
    for (w, workload) in r.workloads.enumerated() {
      let gx = left + Double(w) * groupWidth + 11
      for (a, allocator) in r.allocators.enumerated() {
        let bx = gx + Double(a) * bar
        let colour = colours[allocator.name] ?? "#444"
        let cell = r.cells[w][a]
        if !cell.attempted { continue }
        if !cell.failures.isEmpty {
          s += "<text x=\"\(bx + bar / 2)\" y=\"\(y0 + height - 4)\" text-anchor=\"middle\" font-size=\"11\" fill=\"\(colour)\" font-weight=\"bold\">X</text>\n"
          continue
        }
        guard let v = r.ratio(metric, w, a) else { continue }
        let y = yOf(v)
        s += "<rect x=\"\(bx)\" y=\"\(y)\" width=\"\(bar - 2)\" height=\"\(y0 + height - y)\" fill=\"\(colour)\">"
        s += "<title>\(workload.name) \(allocator.name): \(Fmt.ratio(v))</title></rect>\n"
        if v > cap {   // clipped: say how tall it is
          s += "<text x=\"\(bx + bar / 2)\" y=\"\(y0 - 4)\" text-anchor=\"middle\" font-size=\"9\">\(Fmt.fixed(v, 1))</text>\n"
        } else if allocator.name == "goalloc" {
          s += "<text x=\"\(bx + bar / 2 - 1)\" y=\"\(y - 3)\" text-anchor=\"middle\" font-size=\"9\" fill=\"\(colour)\">\(Fmt.fixed(v, 2))</text>\n"
        }
      }
      s += "<text x=\"\(gx + Double(r.allocators.count) * bar / 2)\" y=\"\(y0 + height + 16)\" text-anchor=\"middle\">\(workload.name)</text>\n"
    }
    return s
  }
}

// MARK: - Small utilities (no Foundation)

enum Fmt {
  /// `x` with `decimals` digits after the point.
  static func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    let whole = Int(scaled / scale), frac = Int(scaled - Double(whole) * scale)
    var text = (x < 0 && scaled != 0 ? "-" : "") + String(whole)
    if decimals > 0 {
      let digits = String(frac)
      text += "." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
    }
    return text
  }

  static func seconds(_ s: Double) -> String { s < 10 ? fixed(s, 3) + " s" : fixed(s, 1) + " s" }
  static func mib(_ kib: Double) -> String { let m = kib / 1024; return (m < 10 ? fixed(m, 2) : fixed(m, 1)) + " MiB" }
  static func ratio(_ r: Double) -> String { fixed(r, 2) + "x" }
}

extension String {
  func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

extension StringProtocol {
  var trimmed: String {
    String(drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" }).reversed()
      .drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" }).reversed())
  }
}

enum Clock {
  static func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
  }
}

enum Machine {
  static func loadAverage() -> String {
    (Path.read("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(separator: ", ")
  }

  static func description() -> String {
    let cpu = (Path.read("/proc/cpuinfo") ?? "").split(separator: "\n")
      .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmed ?? "unknown CPU"
    let memKiB = (Path.read("/proc/meminfo") ?? "").split(separator: "\n")
      .first { $0.hasPrefix("MemTotal:") }?.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
    let kernel = (Path.read("/proc/sys/kernel/osrelease") ?? "?").trimmed
    return "\(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs (\(cpu)), \(Fmt.fixed(memKiB / 1048576, 1)) GiB RAM, Linux \(kernel)"
  }

  static func date() -> String {
    var t = time(nil)
    var tm = tm()
    gmtime_r(&t, &tm)
    var buffer = [CChar](repeating: 0, count: 64)
    let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M UTC", &tm)
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

enum Path {
  static func cwd() -> String { Preload.currentDirectory() ?? "." }
  static func join(_ a: String, _ b: String) -> String { Preload.join(a, b) }
  static func dirname(_ p: String) -> String { Preload.directoryName(p) }
  static func basename(_ p: String) -> String { p.split(separator: "/").last.map(String.init) ?? p }

  static func read(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = fread(&chunk, 1, chunk.count, f)
      if n <= 0 { break }
      bytes.append(contentsOf: chunk[..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  static func write(_ path: String, _ text: String) throws {
    guard let f = fopen(path, "w") else {
      printError("goalloc bench: cannot write \(path)")
      throw ExitCode.failure
    }
    defer { fclose(f) }
    fputs(text, f)
  }

  static func makeDirectories(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
      prefix += "/" + part
      if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
        printError("goalloc bench: cannot create \(prefix): \(String(cString: strerror(errno)))")
        throw ExitCode.failure
      }
    }
  }
}

enum Proc {
  /// Runs `argv` (looked up in PATH), with standard output and error sent to files (nil: inherited)
  /// and this process's environment less LD_PRELOAD plus `extraEnv`. Returns the wait status.
  @discardableResult
  static func run(_ argv: [String], stdout: String?, stderr: String?, extraEnv: [String] = []) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdout { posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    if let stderr {
      if stderr == stdout { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
      else { posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    var env = ChildProcess.currentEnvironment().filter { !$0.hasPrefix("LD_PRELOAD=") }
    let overridden = Set(extraEnv.map { String($0.prefix { $0 != "=" }) })
    env = env.filter { !overridden.contains(String($0.prefix { $0 != "=" })) } + extraEnv
    var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
    var pid = pid_t()
    guard posix_spawnp(&pid, argv[0], &actions, nil, &cArgs, &cEnv) == 0 else { return 127 << 8 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
  }

  /// Exit code of a wait status, or 128 + signal for a killed process.
  static func exitCode(_ status: Int32) -> Int32 {
    status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  }

  /// Standard output of a command that succeeded, or nil.
  static func capture(_ argv: [String]) -> String? {
    let file = "/tmp/goalloc-bench-capture.\(getpid())"
    defer { unlink(file) }
    guard exitCode(run(argv, stdout: file, stderr: "/dev/null")) == 0 else { return nil }
    return Path.read(file)
  }

  /// The first executable `name` in PATH.
  static func which(_ name: String) -> String? {
    let path = RunCommand.environment("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
      let candidate = Path.join(String(dir), name)
      if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
  }

}
