// `goalloc bench gc` (BenchCommand's `gc` argument): GoAlloc's collector side by side with the
// Boehm-Demers-Weiser collector, on GC workloads of our own (Benchmarks/gc/: GCBench-shaped
// trees, binary-trees at depths 18 and 20, a large heap's death, list and graph churn, 1.2 GiB
// live of small objects), all written against bdwgc's API (gc.h) and built once with `-lgc`;
// --workload and --allocator pick among them and these collectors:
//   bdwgc          the binary as built: Debian's libgc.so.1 (parallel marking on every core)
//   bdwgc-1        the same with GC_MARKERS=1 (one marking thread, as GoAlloc's stage 1)
//   bdwgc-inc      the same with GC_ENABLE_INCREMENTAL=1: bdwgc's incremental mode (mark steps
//                  inside allocations, one stop per collection to finish; the program's gcstats
//                  line must say incremental=1)
//   goalloc        the same binary with LD_PRELOAD=libgoalloc.so: its GC_* calls reach GoAlloc's
//                  collector through the Boehm layer (Sources/CGoAllocABI/bdwgc.c)
//   goalloc-objq   GoAlloc with GOALLOC_DEBUG=gcobjqueue=1: a classic object queue instead of
//                  Green Tea's span queue (what the span queue buys)
//   goalloc-eager  GoAlloc with GOALLOC_DEBUG=gcsweep=eager: the whole sweep in the pause (what
//                  the lazy sweep buys)
//   goalloc-1      GoAlloc with GOALLOC_GC_PROCS=1: one mark worker (what parallel marking buys)
//   goalloc-conc   GoAlloc with GOALLOC_DEBUG=gcconc=1: concurrent marking, two short stops per
//                  cycle (what concurrent marking buys over the stop-the-world mark)
//   goalloc-wb     the workload's barrier build (-DGCSTATS_BARRIER: every pointer store into
//                  collected memory through GC_PTR_STORE_AND_DIRTY, gcstats.h's GC_STORE) with
//                  GOALLOC_DEBUG=gcconc=1,gcdirty=barrier: no written pages to rescan in stop 2
//   go             Go's own collector: Benchmarks/go/gcwork.go, the same work in Go (when `go` is
//                  installed; gcbench, binarytrees, gc17 and gcbig)
// and, where a workload has an explicit-free build (-DGCSTATS_EXPLICIT_FREE: calloc/malloc, and
// free where the GC build drops: gcbench, binarytrees, gc17, gcbig), the same work on plain
// malloc/free under glibc, GoAlloc (`goalloc-free`, its malloc), jemalloc, tcmalloc and mimalloc
// (LD_PRELOAD, the allocator suite's peer libraries; a missing one is skipped).
// Each run goes through Benchmarks/harness/measure.c (wall and CPU time, peak RSS), rotating the
// collectors' order from round to round; the program itself reports its collections and its
// stop-the-world pauses, max, total and 99th percentile (gcstats.h: GC_EVENT_PRE_STOP_WORLD to
// GC_EVENT_POST_START_WORLD, the same clock under every collector), and a checksum line that must
// be the same under all of them. Writes OUT/results.md (medians) and OUT/results.tsv (every
// run), prints the Markdown.

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension BenchCommand {
  /// --workload and --allocator name GC workloads and collectors here; the allocator suite's own
  /// flags have no meaning.
  func validateGC() throws {
    for name in workloadFilter where !GCWorkload.all.contains(where: { $0.name == name }) {
      throw ValidationError("unknown GC workload \(name); known: \(GCWorkload.all.map(\.name).joined(separator: ", "))")
    }
    for name in allocatorFilter where !GCCollector.all.contains(where: { $0.name == name }) {
      throw ValidationError("unknown collector \(name); known: \(GCCollector.all.map(\.name).joined(separator: ", "))")
    }
    if callgrind { throw ValidationError("--callgrind is for the allocator suite, not `bench gc`.") }
  }

  func runGC() throws {
    let started = Clock.now()
    let root = try locateSourceRoot()
    let outDir = Files.absolute(outPath)
    let bin = Files.join(outDir, "bin"), logs = Files.join(outDir, "logs")
    try Files.makeDirectories(bin, command: "goalloc bench gc")
    try Files.makeDirectories(logs, command: "goalloc bench gc")
    guard access("/usr/include/gc.h", R_OK) == 0 || access("/usr/include/gc/gc.h", R_OK) == 0 else {
      printError("goalloc bench gc: gc.h not found: install Debian's libgc-dev")
      throw ExitCode.failure
    }
    let library = try Preload.libraryPath()
    if library.contains("/debug/") {
      printError("goalloc bench gc: libgoalloc.so is a debug build (\(library)): build with `swift build -c release`.")
    }
    let frozen = Files.join(bin, "libgoalloc.so")
    guard BenchChild.run(["cp", library, frozen], stdout: nil, stderr: nil).exitCode == 0 else {
      printError("goalloc bench gc: cannot copy \(library) to \(frozen)")
      throw ExitCode.failure
    }
    let workloads = GCWorkload.all.filter { workloadFilter.isEmpty || workloadFilter.contains($0.name) }
    var collectors = GCCollector.all.filter { allocatorFilter.isEmpty || allocatorFilter.contains($0.name) }
    var built = Set<String>()
    let barrier = collectors.contains { $0.kind == .gcBarrier }
    for w in workloads where built.insert(w.program).inserted {
      for build in ["", "-free", "-wb"] where build == "" || (build == "-free" ? w.explicitFree : barrier) {
        let name = w.program + build
        let flags = build == "-free" ? ["-DGCSTATS_EXPLICIT_FREE"] : build == "-wb" ? ["-DGCSTATS_BARRIER", "-lgc"] : ["-lgc"]
        let err = Files.join(logs, "cc-\(name).err")
        let status = BenchChild.run([cc, "-O2", "-pthread", "-I", Files.join(root, "Benchmarks/gc"), "-o", Files.join(bin, name),
                                     Files.join(root, "Benchmarks/gc/\(w.program).c")] + flags,
                                    stdout: err, stderr: err)
        guard status.exitCode == 0 else {
          printError("goalloc bench gc: \(cc) failed on \(w.program).c:\n" + (Files.read(err) ?? ""))
          throw ExitCode.failure
        }
      }
    }
    // The malloc peers that are installed; Go when it is.
    collectors = collectors.filter { c in
      guard let peer = c.peer else { return true }
      if access(peer, R_OK) == 0 { return true }
      printError("goalloc bench gc: \(c.name) skipped: \(peer) is missing (Scripts/install-peers.sh installs it).")
      return false
    }
    if collectors.contains(where: { $0.kind == .go }) {
      let go = Which.find("go")
      if go == nil || !buildGo(go: go!, source: Files.join(root, "Benchmarks/go/gcwork.go"), output: Files.join(bin, "gcwork"),
                               outDir: outDir, logs: logs) {
        printError("goalloc bench gc: go skipped: " + (go == nil ? "`go` is not installed" : "building Benchmarks/go/gcwork.go failed (see \(logs)/go-build.err)"))
        collectors.removeAll { $0.kind == .go }
      }
    }
    try compileC(Files.join(root, "Benchmarks/harness/measure.c"), to: Files.join(bin, "measure"), logs: logs)

    var table = GCResults(workloads: workloads, collectors: collectors)
    var tsv = "workload\tcollector\tround\twall_s\tcpu_s\tmaxrss_kib\tcollections\tpause_max_ms\tpause_p99_ms\tpause_total_ms\tstall_max_ms\tstatus\n"
    let loadBefore = Machine.loadAverage()
    for round in 0..<runs {
      for (wi, w) in workloads.enumerated() {
        let shift = (round + wi) % collectors.count
        for ci in Array(collectors.indices[shift...]) + Array(collectors.indices[..<shift]) {
          let c = collectors[ci]
          if !c.runs(w) { continue }
          let base = Files.join(logs, "\(w.name).\(c.name).\(round + 1)")
          let args = quick ? w.quickArgs : w.args
          let argv: [String]
          switch c.kind {
          case .gc: argv = [Files.join(bin, w.program)] + args
          case .gcBarrier: argv = [Files.join(bin, "\(w.program)-wb")] + args
          case .explicitFree: argv = [Files.join(bin, "\(w.program)-free")] + args
          case .go: argv = [Files.join(bin, "gcwork"), w.program] + args
          }
          let invocation = BenchCommand.Invocation(argv: argv, preload: c.preloadGoAlloc ? frozen : c.peer, env: c.env)
          let m = runMeasured(invocation, base: base, bin: bin)
          var run = GCRun(sample: m.sample, failure: m.failure)
          if m.failure == nil {
            let lines = m.output.split(separator: "\n").map(String.init)
            let stats = Report.parseFields(lines.last { $0.hasPrefix("gcstats:") } ?? "")
            run.check = lines.last { $0.hasPrefix("\(w.program):") } ?? ""
            if let n = stats["collections"].flatMap(Double.init), let mx = stats["pause_max_ns"].flatMap(Double.init),
               let total = stats["pause_total_ns"].flatMap(Double.init), let p99 = stats["pause_p99_ns"].flatMap(Double.init),
               !run.check.isEmpty {
              run.collections = n
              run.pauseMaxMs = mx / 1e6
              run.pauseP99Ms = p99 / 1e6
              run.pauseTotalMs = total / 1e6
              run.stallMaxMs = (stats["stall_max_ns"].flatMap(Double.init) ?? 0) / 1e6  // (GoAlloc's; 0 elsewhere)
              if c.incremental && stats["incremental"] != "1" {
                run.failure = "bdwgc's incremental mode is off (gcstats: incremental=\(stats["incremental"] ?? "?"); see \(base).out)"
              }
            } else {
              run.failure = "no gcstats or result line (see \(base).out)"
            }
          }
          table.record(run, workload: wi, collector: ci)
          tsv += "\(w.name)\t\(c.name)\t\(round + 1)\t\(GoAllocFormat.fixed(run.sample.wallNs / 1e9, 4))\t"
            + "\(GoAllocFormat.fixed(run.sample.cpuUs / 1e6, 4))\t\(Int(run.sample.maxRssKiB))\t\(Int(run.collections))\t"
            + "\(GoAllocFormat.fixed(run.pauseMaxMs, 3))\t\(GoAllocFormat.fixed(run.pauseP99Ms, 3))\t\(GoAllocFormat.fixed(run.pauseTotalMs, 3))\t\(GoAllocFormat.fixed(run.stallMaxMs, 3))\t"
            + "\(run.failure ?? m.status)\n"
          printError("[\(round + 1)/\(runs)] \(w.name.pad(12)) \(c.name.pad(14)) "
            + (run.failure == nil
               ? "\(Fmt.seconds(run.sample.wallNs / 1e9).pad(9)) \(Fmt.mib(run.sample.maxRssKiB).pad(10)) "
                 + "\(Int(run.collections)) GCs, max pause \(GoAllocFormat.fixed(run.pauseMaxMs, 2)) ms, p99 \(GoAllocFormat.fixed(run.pauseP99Ms, 2)) ms"
               : "FAILED: \(run.failure!)"))
        }
      }
    }
    let markdown = table.markdown(
      runs: runs, quick: quick, elapsedS: Clock.now() - started, loadBefore: loadBefore, loadAfter: Machine.loadAverage(),
      command: CommandLine.arguments.dropFirst().joined(separator: " "),
      revision: BenchChild.capture(["git", "-C", root, "describe", "--always", "--dirty"])?.trimmed ?? "unknown",
      bdwgc: BenchChild.capture(["dpkg-query", "-W", "-f", "${Version}", "libgc1"])?.trimmed ?? "?")
    try Files.writeFile(Files.join(outDir, "results.md"), markdown, command: "goalloc bench gc")
    try Files.writeFile(Files.join(outDir, "results.tsv"), tsv, command: "goalloc bench gc")
    print(markdown)
    printError("goalloc bench gc: wrote \(outDir)/results.md, results.tsv")
    if table.anyFailure { throw ExitCode(1) }
  }
}

/// A GC workload: Benchmarks/gc/PROGRAM.c (the row's name unless it says otherwise) and its arguments.
struct GCWorkload {
  let name: String
  var source: String? = nil  // the program, where the row runs another's (binarytrees20)
  let args: [String]
  let quickArgs: [String]
  let what: String
  var explicitFree = false   // has a malloc/free build (the malloc peers' rows)
  var go = false             // Benchmarks/go/gcwork.go does it too
  var objects: Int? = nil    // objects allocated (a ns-per-object line): args[0]

  /// Benchmarks/gc/PROGRAM.c, its binaries, its result line's prefix and gcwork.go's argument.
  var program: String { source ?? name }

  static let all = [
    GCWorkload(name: "gcbench", args: ["18"], quickArgs: ["14"],
               what: "GCBench-shaped (argument: the maximum depth): a long-lived tree and array, trees of depth 4, 6, ... built top-down and bottom-up",
               explicitFree: true, go: true),
    GCWorkload(name: "binarytrees", args: ["18"], quickArgs: ["14"],
               what: "binary-trees (argument: the depth): 16 B nodes, one long-lived tree",
               explicitFree: true, go: true),
    GCWorkload(name: "binarytrees20", source: "binarytrees", args: ["20"], quickArgs: ["15"],
               what: "binary-trees at depth 20 (issue 20 quotes its pause target there): binarytrees.c, 16 B nodes, one long-lived tree",
               explicitFree: true, go: true),
    GCWorkload(name: "gc17", args: ["50000000", "10000"], quickArgs: ["5000000", "10000"],
               what: "17 B objects, most dying young (arguments: objects, kept): pointer-free 17 B objects (Go: `new` of a [17]byte struct), each kept in a ring of 10 000 until replaced",
               explicitFree: true, go: true, objects: 1),
    GCWorkload(name: "gcheap", args: ["200"], quickArgs: ["20"],
               what: "the pause of collecting a heap that just died (argument: MB of 64 B objects allocated with collections off, 1 in 100 kept): its only collection"),
    GCWorkload(name: "gcchurn", args: ["200000", "4096"], quickArgs: ["20000", "1024"],
               what: "list and graph churn (arguments: steps, lists): linked lists of 40-248 B nodes with 8-120 B pointer-free payloads and links within each list, one replaced per step"),
    GCWorkload(name: "gcbig", args: ["1228", "200"], quickArgs: ["40", "200"],
               what: "a large live heap (arguments: MiB live, percent of it replaced; the full run keeps 1.2 GiB live): 32-64 B scanned nodes in chains of 32 from one pointer array, random chains replaced until twice the live nodes have been, so every collection marks the whole live set",
               explicitFree: true, go: true),
  ]
}

/// A collector (or a malloc peer, or Go): which build of the workload runs, and how.
struct GCCollector {
  enum Kind { case gc, gcBarrier, explicitFree, go }
  let name: String
  var kind = Kind.gc
  var preloadGoAlloc = false  // LD_PRELOAD=libgoalloc.so
  var peer: String? = nil     // LD_PRELOAD=this peer library
  var env: [(String, String?)] = []
  var incremental = false     // the run must report GC_is_incremental_mode() (gcstats: incremental=1)

  func runs(_ w: GCWorkload) -> Bool {
    switch kind {
    case .gc, .gcBarrier: return true
    case .explicitFree: return w.explicitFree
    case .go: return w.go
    }
  }

  static func peerPath(_ name: String) -> String? { Allocator.peerLibraries.first { $0.0 == name }?.1 }

  static let all = [
    GCCollector(name: "bdwgc"),
    GCCollector(name: "bdwgc-1", env: [("GC_MARKERS", "1")]),
    GCCollector(name: "bdwgc-inc", env: [("GC_ENABLE_INCREMENTAL", "1")], incremental: true),
    GCCollector(name: "goalloc", preloadGoAlloc: true),
    GCCollector(name: "goalloc-1", preloadGoAlloc: true, env: [("GOALLOC_GC_PROCS", "1")]),
    GCCollector(name: "goalloc-objq", preloadGoAlloc: true, env: [("GOALLOC_DEBUG", "gcobjqueue=1")]),
    GCCollector(name: "goalloc-eager", preloadGoAlloc: true, env: [("GOALLOC_DEBUG", "gcsweep=eager")]),
    GCCollector(name: "goalloc-conc", preloadGoAlloc: true, env: [("GOALLOC_DEBUG", "gcconc=1")]),
    GCCollector(name: "goalloc-wb", kind: .gcBarrier, preloadGoAlloc: true, env: [("GOALLOC_DEBUG", "gcconc=1,gcdirty=barrier")]),
    GCCollector(name: "go", kind: .go),
    GCCollector(name: "glibc", kind: .explicitFree),
    GCCollector(name: "goalloc-free", kind: .explicitFree, preloadGoAlloc: true),
    GCCollector(name: "jemalloc", kind: .explicitFree, peer: peerPath("jemalloc")),
    GCCollector(name: "tcmalloc", kind: .explicitFree, peer: peerPath("tcmalloc")),
    GCCollector(name: "mimalloc", kind: .explicitFree, peer: peerPath("mimalloc")),
  ]
}

struct GCRun {
  var sample = Sample()
  var failure: String?
  var check = ""
  var collections = 0.0
  var pauseMaxMs = 0.0
  var pauseP99Ms = 0.0
  var pauseTotalMs = 0.0
  var stallMaxMs = 0.0  // GoAlloc's concurrent mode: the longest wait of an allocation for a mark
}

/// Every run, per workload and collector, and the report of their medians.
struct GCResults {
  let workloads: [GCWorkload]
  let collectors: [GCCollector]
  var runs: [[[GCRun]]]

  init(workloads: [GCWorkload], collectors: [GCCollector]) {
    self.workloads = workloads
    self.collectors = collectors
    runs = Array(repeating: Array(repeating: [], count: collectors.count), count: workloads.count)
  }

  mutating func record(_ r: GCRun, workload: Int, collector: Int) { runs[workload][collector].append(r) }

  var anyFailure: Bool { runs.contains { $0.contains { $0.contains { $0.failure != nil } } } }

  func median(_ w: Int, _ c: Int, _ value: (GCRun) -> Double) -> Double? {
    let ok = runs[w][c].filter { $0.failure == nil }
    return ok.isEmpty ? nil : Stats.median(ok.map(value))
  }

  /// Whether every successful run of workload w printed the same result line.
  func checksAgree(_ w: Int) -> Bool {
    Set(runs[w].flatMap { $0.filter { $0.failure == nil }.map(\.check) }).count <= 1
  }

  func markdown(runs n: Int, quick: Bool, elapsedS: Double, loadBefore: String, loadAfter: String,
                command: String, revision: String, bdwgc: String) -> String {
    var s = "# goalloc bench gc\n\n"
    s += "\(Machine.date()); \(Machine.description()); GoAlloc \(revision); bdwgc: Debian libgc1 \(bdwgc).\n"
    s += "`goalloc \(command)`: \(n) run(s) of each workload under each collector\(quick ? " (--quick)" : ""), "
      + "medians; \(GoAllocFormat.fixed(elapsedS, 0)) s; load average \(loadBefore) before, \(loadAfter) after.\n\n"
    s += "Collectors: " + collectors.map { c in
      switch c.name {
      case "bdwgc": return "`bdwgc` (the -lgc binary as built)"
      case "bdwgc-1": return "`bdwgc-1` (GC_MARKERS=1: one marking thread)"
      case "bdwgc-inc": return "`bdwgc-inc` (GC_ENABLE_INCREMENTAL=1: bdwgc's incremental mode; its mark steps run inside allocations between the stops, not counted as pauses)"
      case "goalloc": return "`goalloc` (the same binary, LD_PRELOAD=libgoalloc.so)"
      case "goalloc-objq": return "`goalloc-objq` (GOALLOC_DEBUG=gcobjqueue=1: an object queue, not Green Tea's span queue)"
      case "goalloc-eager": return "`goalloc-eager` (GOALLOC_DEBUG=gcsweep=eager: the sweep in the pause)"
      case "goalloc-1": return "`goalloc-1` (GOALLOC_GC_PROCS=1: one mark worker)"
      case "goalloc-conc": return "`goalloc-conc` (GOALLOC_DEBUG=gcconc=1: concurrent marking; each of a cycle's two stops is a pause)"
      case "goalloc-wb": return "`goalloc-wb` (the barrier build, -DGCSTATS_BARRIER: every pointer store into collected memory through GC_PTR_STORE_AND_DIRTY; GOALLOC_DEBUG=gcconc=1,gcdirty=barrier)"
      case "go": return "`go` (Benchmarks/go/gcwork.go: the same work in Go, its collector at GOGC=100)"
      case "goalloc-free": return "`goalloc-free` (the explicit-free build on GoAlloc's malloc/free)"
      default: return "`\(c.name)` (the explicit-free build on \(c.name)'s malloc/free)"
      }
    }.joined(separator: "; ") + ". Pauses: stop-the-world, as the program's GC_EVENT_PRE_STOP_WORLD .. "
      + "GC_EVENT_POST_START_WORLD callback measures them (Go: its runtime's PauseNs); p99 is the 99th percentile of "
      + "a run's pauses (nearest rank; Go: of the last 256). Max stall: GoAlloc's concurrent mode only, the longest time "
      + "an allocation waited for a mark at the heap's hard goal (a pause of that thread alone; its GCStallMaxNs).\n\n"
    for (w, workload) in workloads.enumerated() {
      s += "## \(workload.name) \((quick ? workload.quickArgs : workload.args).joined(separator: " "))\n\n\(workload.what)."
      s += checksAgree(w) ? " Result line identical under every collector.\n\n" : " **Result lines differ between collectors.**\n\n"
      s += "| collector | time s | CPU s | peak RSS MiB | collections | max pause ms | p99 pause ms | total pause ms | max stall ms | time vs bdwgc | RSS vs bdwgc |\n"
      s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
      let b = collectors.firstIndex { $0.name == "bdwgc" }
      var perObject: [String] = []
      for (c, collector) in collectors.enumerated() where collector.runs(workload) {
        guard let t = median(w, c, { $0.sample.wallNs / 1e9 }) else {
          s += "| \(collector.name) | failed: \(runs[w][c].compactMap(\.failure).first ?? "?") | | | | | | | | | |\n"
          continue
        }
        let cpu = median(w, c) { $0.sample.cpuUs / 1e6 } ?? 0
        let rss = median(w, c) { $0.sample.maxRssKiB } ?? 0
        let gcs = median(w, c) { $0.collections } ?? 0
        let mx = median(w, c) { $0.pauseMaxMs } ?? 0
        let p99 = median(w, c) { $0.pauseP99Ms } ?? 0
        let total = median(w, c) { $0.pauseTotalMs } ?? 0
        let stall = median(w, c) { $0.stallMaxMs } ?? 0
        var vsTime = "", vsRSS = ""
        if let b, let bt = median(w, b, { $0.sample.wallNs / 1e9 }), let br = median(w, b, { $0.sample.maxRssKiB }), bt > 0, br > 0 {
          vsTime = Fmt.ratio(t / bt)
          vsRSS = Fmt.ratio(rss / br)
        }
        s += "| \(collector.name) | \(GoAllocFormat.fixed(t, 2)) | \(GoAllocFormat.fixed(cpu, 2)) | "
          + "\(GoAllocFormat.fixed(rss / 1024, 1)) | \(Int(gcs)) | \(GoAllocFormat.fixed(mx, 2)) | \(GoAllocFormat.fixed(p99, 2)) | "
          + "\(GoAllocFormat.fixed(total, 1)) | \(GoAllocFormat.fixed(stall, 2)) | \(vsTime) | \(vsRSS) |\n"
        if workload.objects != nil, let n = Double((quick ? workload.quickArgs : workload.args)[0]), n > 0 {
          perObject.append("\(collector.name) \(GoAllocFormat.fixed(t * 1e9 / n, 1))")
        }
      }
      if !perObject.isEmpty {
        s += "\nns per object (wall time / objects, collection and process start included): " + perObject.joined(separator: ", ") + ".\n"
      }
      s += "\n"
    }
    return s
  }
}
