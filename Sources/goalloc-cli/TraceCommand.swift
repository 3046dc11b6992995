// `goalloc trace record | summarize | replay`: allocation traces (GOALLOC_DEBUG=allocfreetrace).
//
//   goalloc trace record -o FILE [--stacks] -- CMD [ARGS...]   run CMD under the library, tracing
//   goalloc trace summarize FILE [--top N]                    counts, sizes, lifetimes, live set, hot sites
//   goalloc trace replay FILE [--runs N]                      the same requests under each allocator

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct TraceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "trace",
    abstract: "Record, summarize and replay allocation traces.",
    discussion: """
      A trace lists every malloc and free of a program run under libgoalloc.so, in one order \
      valid for all its threads ("# goalloc allocfreetrace v1": `a <tid> <addr> <size> <class>` \
      and `f <tid> <addr>`, with return addresses when recorded with --stacks).
      """,
    subcommands: [TraceRecordCommand.self, TraceSummarizeCommand.self, TraceReplayCommand.self]
  )

  func run() throws {
    throw ValidationError("missing subcommand: record, summarize or replay")
  }
}

// MARK: - record

struct TraceRecordCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "record",
    abstract: "Run a command under libgoalloc.so and record its allocation trace.",
    discussion: """
      Adds allocfreetrace=FILE (and tracestack=1 with --stacks) to GOALLOC_DEBUG, runs the \
      command, and exits with its status. With --stacks each event carries up to 32 return \
      addresses and the trace ends with the program's executable mappings, so `trace summarize` \
      can name the hot call sites. Programs the command starts inherit the setting and write the \
      same file: trace one program at a time (not a shell script).
      """
  )

  @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The trace file to write.", valueName: "file"))
  var output: String

  @Flag(help: "Record the call stack of every allocation and free (slower, bigger).")
  var stacks = false

  @Argument(parsing: .postTerminator, help: "The command to run and its arguments (after `--`).")
  var command: [String] = []

  func validate() throws {
    if output.isEmpty { throw ValidationError("-o needs a file name.") }
  }

  func run() throws {
    guard !command.isEmpty else {
      throw ValidationError("missing command; usage: goalloc trace record -o FILE [--stacks] -- CMD [ARGS...]")
    }
    let library = try Preload.libraryPath()
    let path = Files.absolute(output)
    // Fail early, in our words, if the file cannot be written (the library would stay silent).
    let probe = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard probe >= 0 else {
      printError("goalloc trace record: cannot write \(output): \(String(cString: strerror(errno)))")
      throw ExitCode.failure
    }
    close(probe)
    var settings: [(String, String)] = [("allocfreetrace", path)]
    if stacks { settings.append(("tracestack", "1")) }
    let env = ChildProcess.preloadEnvironment(library: library, debug: settings)
    let pid = try ChildProcess.spawn(command, env: env, command: "goalloc trace record")
    let end = ChildProcess.wait(pid)
    let counts = Self.countEvents(path)
    if counts.header {
      printError("goalloc trace record: \(output): \(counts.allocs) allocations, \(counts.frees) frees"
                 + (counts.collections > 0 ? ", \(counts.collections) collections" : "")
                 + " (\(command[0]): \(end.description))")
    } else {
      printError("goalloc trace record: \(command[0]) wrote no trace to \(output) (\(end.description)); "
                 + "it must be dynamically linked and allocate at least once")
      throw ExitCode(end.exitCode != 0 ? end.exitCode : 1)
    }
    throw ExitCode(end.exitCode)
  }

  /// Lines starting "a ", "f " and "g ", and whether the header is there (a fast scan, no parsing).
  static func countEvents(_ path: String) -> (header: Bool, allocs: Int, frees: Int, collections: Int) {
    guard let f = fopen(path, "rb") else { return (false, 0, 0, 0) }
    defer { fclose(f) }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var atLineStart = true, header = false, first = true
    var allocs = 0, frees = 0, collections = 0
    var firstLine: [UInt8] = []
    while true {
      let n = fread(&chunk, 1, chunk.count, f)
      if n == 0 { break }
      for i in 0..<n {
        let c = chunk[i]
        if first {
          if c == 0x0A {
            first = false
            header = String(decoding: firstLine, as: UTF8.self) == AllocationTrace.header
          } else if firstLine.count < 64 {
            firstLine.append(c)
          }
        }
        if atLineStart {
          if c == 0x61 { allocs += 1 } else if c == 0x66 { frees += 1 } else if c == 0x67 { collections += 1 }
        }
        atLineStart = c == 0x0A
      }
    }
    return (header, allocs, frees, collections)
  }
}

// MARK: - summarize

struct TraceSummarizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "summarize",
    abstract: "Summarize an allocation trace.",
    discussion: """
      Prints the number of allocations and frees, allocations by size class (and large objects \
      by size), object lifetimes measured in trace events from allocation to free (percentiles), \
      the objects still live at the end, the peak of live bytes, and — for traces recorded with \
      --stacks — the call sites that allocate the most, symbolized with addr2line (falling back \
      to module+offset). Frees of memory allocated before tracing began are counted apart.
      """
  )

  @Argument(help: ArgumentHelp("The trace file.", valueName: "trace-file"))
  var trace: String

  @Option(help: "How many call sites to list.")
  var top = 15

  @Flag(name: .customLong("no-symbols"), help: "Do not run addr2line; show call sites as module+offset.")
  var noSymbols = false

  func validate() throws {
    if top < 0 { throw ValidationError("--top must not be negative.") }
  }

  func run() throws {
    let s: AllocationTraceSummary
    do {
      s = try AllocationTraceSummary(path: trace)
    } catch {
      printError("goalloc trace summarize: \(trace): \(error)")
      throw ExitCode.failure
    }
    print(Self.report(s, name: trace, top: top, symbols: !noSymbols), terminator: "")
  }

  static func report(_ s: AllocationTraceSummary, name: String, top: Int, symbols: Bool) -> String {
    let b = GoAllocFormat.bytes
    var out = "trace \(name)\n"
    func row(_ label: String, _ value: String) { out += "  " + label.pad(22) + value + "\n" }
    row("events", "\(s.events) (\(s.allocations) allocations, \(s.frees) frees) from \(s.threads) thread\(s.threads == 1 ? "" : "s")")
    if s.unknownFrees > 0 { row("", "\(s.unknownFrees) frees of memory allocated before tracing began (ignored)") }
    if s.replacedLive > 0 { row("", "\(s.replacedLive) allocations at a still-live address (the free was missed)") }
    row("bytes requested", "\(b(s.bytesRequested)) (\(s.bytesRequested) B)")
    row("live at the end", "\(s.liveObjects) objects, \(b(s.liveBytes)) (\(s.liveBytes) B)")
    row("peak live", "\(b(s.peakLiveBytes)) (\(s.peakLiveBytes) B) at event \(s.peakEvent + 1); at most \(s.peakLiveObjects) objects")
    if !s.collections.isEmpty {
      let c = s.collections
      let forced = c.filter(\.forced).count
      let pauses = c.map(\.pauseNs)
      row("collections", "\(c.count) (\(forced) forced); pause max \(GoAllocFormat.fixed(Double(pauses.max() ?? 0) / 1e6, 3)) ms, "
          + "total \(GoAllocFormat.fixed(Double(pauses.reduce(0, +)) / 1e6, 3)) ms")
      if let last = c.last {
        row("", "last: gc \(last.number) at event \(last.afterEvents), heap \(b(last.heapBefore)) -> \(b(last.heapAfter)), "
            + "\(b(last.marked)) marked, goal \(b(last.goal))")
      }
    }
    if let l = s.lifetimes {
      row("lifetime (events)", "p50 \(l.p50), p90 \(l.p90), p99 \(l.p99), max \(l.max), mean \(GoAllocFormat.fixed(l.mean, 1)) over \(l.count) freed objects")
    } else {
      row("lifetime (events)", "no object was freed")
    }

    if !s.classes.isEmpty {
      out += "\nallocations by size class\n"
      out += "  class  slot size  allocations       %  bytes requested  slot bytes\n"
      for c in s.classes {
        let pct = s.allocations > 0 ? GoAllocFormat.fixed(100 * Double(c.allocations) / Double(s.allocations), 1) : "0"
        out += "  " + String(c.sizeClass).padLeft(5) + "  " + b(c.slotSize).padLeft(9) + "  "
          + String(c.allocations).padLeft(11) + "  " + pct.padLeft(6) + "  " + b(c.bytes).padLeft(15)
          + "  " + b(c.allocations * c.slotSize).padLeft(10) + "\n"
      }
    }
    if !s.large.isEmpty {
      out += "\nlarge objects (> 32 KiB) by size\n"
      out += "  size                     allocations       %  bytes requested\n"
      for r in s.large {
        let pct = s.allocations > 0 ? GoAllocFormat.fixed(100 * Double(r.allocations) / Double(s.allocations), 1) : "0"
        out += "  " + "\(b(r.lower)) to \(b(r.upper))".pad(23) + "  " + String(r.allocations).padLeft(11)
          + "  " + pct.padLeft(6) + "  " + b(r.bytes).padLeft(15) + "\n"
      }
    }
    if s.hasStacks && top > 0 {
      let shown = Array(s.sites.prefix(top))
      let pcs = shown.flatMap { [$0.pc, $0.caller] }
      let syms = Symbolizer.symbolize(pcs, mappings: s.mappings, useAddr2line: symbols, useSymbols: symbols)
      func name(_ pc: UInt) -> String {
        pc == 0 ? "[no frame outside libgoalloc.so: the stack was not unwound]" : syms[pc]?.text ?? "0x" + String(pc, radix: 16)
      }
      out += "\nhot call sites (by bytes requested; \(s.sites.count) in all)\n"
      out += "  bytes requested  allocations  live objects  live bytes  site  <-  caller\n"
      for site in shown {
        out += "  " + b(site.bytes).padLeft(15) + "  " + String(site.allocations).padLeft(11) + "  "
          + String(site.liveObjects).padLeft(12) + "  " + b(site.liveBytes).padLeft(10) + "  " + name(site.pc)
        if site.caller != 0 { out += "  <-  " + name(site.caller) }
        out += "\n"
      }
    } else if !s.hasStacks {
      out += "\n(no call stacks in this trace: record with `goalloc trace record --stacks` to see the hot call sites)\n"
    }
    return out
  }
}

// MARK: - replay

struct TraceReplayCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "replay",
    abstract: "Replay a trace's requests under GoAlloc and the other allocators installed.",
    discussion: """
      Turns the trace into a compact op list (malloc of each traced size, free of each traced \
      address; frees of addresses the trace never allocated are left out), compiles a small C \
      replay program with cc, and runs it with LD_PRELOAD set to each allocator: glibc (no \
      preload), libgoalloc.so, and jemalloc, tcmalloc and mimalloc where Debian's libraries are \
      installed (a missing one is skipped with a note). Prints the median replay time, time per \
      operation, peak RSS and its growth over the replay, and the objects and bytes still live at \
      the end, which must equal the trace's live set (the command fails otherwise). The replay \
      runs on one thread, in the trace's order.
      """
  )

  @Argument(help: ArgumentHelp("The trace file.", valueName: "trace-file"))
  var trace: String

  @Option(help: "Runs per allocator; the median time is shown.")
  var runs = 3

  @Option(name: .customLong("allocator"),
          help: ArgumentHelp("Replay only under this allocator (repeatable): \(ReplayAllocator.names.joined(separator: ", ")).",
                             valueName: "name"))
  var allocators: [String] = []

  @Option(help: "The C compiler for the replay program.")
  var cc = "cc"

  func validate() throws {
    if runs < 1 { throw ValidationError("--runs must be at least 1.") }
    for a in allocators where !ReplayAllocator.names.contains(a) {
      throw ValidationError("unknown allocator \(a); known: \(ReplayAllocator.names.joined(separator: ", ")).")
    }
  }

  func run() throws {
    let ops: ReplayOps
    do {
      ops = try ReplayOps(tracePath: trace)
    } catch {
      printError("goalloc trace replay: \(trace): \(error)")
      throw ExitCode.failure
    }
    guard let compiler = Which.find(cc) else {
      printError("goalloc trace replay: the C compiler `\(cc)` is not on PATH (it builds the replay program; see --cc)")
      throw ExitCode.failure
    }
    var chosen = ReplayAllocator.available(goalloc: try? Preload.libraryPath())
    if !allocators.isEmpty {
      chosen = chosen.filter { allocators.contains($0.name) }
    }
    for a in chosen where a.library != nil && !Files.exists(a.library!) {
      printError("goalloc trace replay: \(a.name) skipped: \(a.library!) is not installed")
    }
    chosen = chosen.filter { $0.library == nil || Files.exists($0.library!) }
    guard !chosen.isEmpty else {
      printError("goalloc trace replay: none of the allocators asked for is available")
      throw ExitCode.failure
    }

    let dir = try Files.temporaryDirectory("replay")
    defer { Files.removeDirectory(dir) }
    let opsFile = Files.join(dir, "ops.bin"), src = Files.join(dir, "replay.c"), exe = Files.join(dir, "replay")
    try Files.writeFile(opsFile, ops.bytes, command: "goalloc trace replay")
    try Files.writeFile(src, ReplayProgram.source, command: "goalloc trace replay")
    let log = Files.join(dir, "cc.log")
    let ccEnv = ChildProcess.environment([("LD_PRELOAD", nil), ("GOALLOC_DEBUG", nil)])
    let ccStatus = try ChildProcess.runToFiles([compiler, "-O2", "-o", exe, src], env: ccEnv, stdout: log, stderr: log)
    guard ccStatus.exitCode == 0 else {
      printError("goalloc trace replay: compiling the replay program failed:\n" + (Files.read(log) ?? ""))
      throw ExitCode.failure
    }

    var results: [String: [ReplayResult]] = [:]
    for r in 0..<runs {
      // A different allocator goes first in each round (drifting load falls on all alike).
      let order = (0..<chosen.count).map { chosen[($0 + r) % chosen.count] }
      for a in order {
        var set: [(String, String?)] = [("LD_PRELOAD", a.library), ("GOALLOC_DEBUG", nil)]
        if a.library == nil { set[0].1 = nil }
        let env = ChildProcess.environment(set)
        let out = Files.join(dir, "out"), err = Files.join(dir, "err")
        let status = try ChildProcess.runToFiles([exe, opsFile], env: env, stdout: out, stderr: err)
        guard status.exitCode == 0, let text = Files.read(out), let result = ReplayResult(parsing: text) else {
          printError("goalloc trace replay: the replay under \(a.name) failed (\(status.description)):\n"
                     + (Files.read(err) ?? "") + (Files.read(out) ?? ""))
          throw ExitCode.failure
        }
        results[a.name, default: []].append(result)
      }
    }
    let (table, ok) = Self.report(ops: ops, allocators: chosen, results: results, trace: trace, runs: runs)
    print(table, terminator: "")
    if !ok { throw ExitCode.failure }
  }

  static func report(ops: ReplayOps, allocators: [ReplayAllocator], results: [String: [ReplayResult]],
                     trace: String, runs: Int) -> (String, Bool) {
    var out = "replay of \(trace): \(ops.ops) operations (\(ops.allocations) mallocs, \(ops.frees) frees"
    if ops.skippedFrees > 0 { out += "; \(ops.skippedFrees) frees of memory allocated before tracing began left out" }
    out += "), \(runs) run\(runs == 1 ? "" : "s") per allocator, median shown\n\n"
    let header = ["allocator", "time", "ns/op", "peak RSS", "RSS growth", "live objects", "live bytes"]
    var rows: [[String]] = []
    var ok = true
    for a in allocators {
      guard let rs = results[a.name], !rs.isEmpty else { continue }
      let sorted = rs.sorted { $0.ns < $1.ns }
      let med = sorted[sorted.count / 2]
      let peak = rs.map(\.peakKB).sorted()[rs.count / 2]
      let growth = rs.map { max(0, $0.peakKB - $0.baseKB) }.sorted()[rs.count / 2]
      let nsPerOp = ops.ops > 0 ? Double(med.ns) / Double(ops.ops) : 0
      rows.append([a.name, formatDuration(med.ns), GoAllocFormat.fixed(nsPerOp, 1), GoAllocFormat.bytes(peak * 1024),
                   GoAllocFormat.bytes(growth * 1024), String(med.liveObjects), String(med.liveBytes)])
      for r in rs where r.liveObjects != ops.liveObjects || r.liveBytes != ops.liveBytes {
        ok = false
        _ = r
      }
    }
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
      "  " + cells.enumerated().map { i, c in i == 0 ? c.pad(widths[i]) : c.padLeft(widths[i]) }.joined(separator: "  ") + "\n"
    }
    out += line(header)
    for r in rows { out += line(r) }
    out += "\n"
    for a in allocators {
      out += "  " + a.name.pad(widths[0]) + "  " + (a.library ?? "the C library's malloc (no LD_PRELOAD)") + "\n"
    }
    if allocators.contains(where: { $0.name == "goalloc" && ($0.library ?? "").contains("/debug/") }) {
      out += "  (libgoalloc.so is a debug build: for timings run the release goalloc-cli, `swift build -c release`)\n"
    }
    out += "\ntrace live set at the end: \(ops.liveObjects) objects, \(ops.liveBytes) bytes: "
    out += ok ? "every replay ended with it\n" : "NOT reproduced by every replay (see the live columns)\n"
    return (out, ok)
  }

  static func formatDuration(_ ns: UInt64) -> String {
    let d = Double(ns)
    if d < 1e3 { return "\(ns) ns" }
    if d < 1e6 { return GoAllocFormat.fixed(d / 1e3, 1) + " µs" }
    if d < 1e9 { return GoAllocFormat.fixed(d / 1e6, 2) + " ms" }
    return GoAllocFormat.fixed(d / 1e9, 3) + " s"
  }
}

/// One line of the replay program's output.
struct ReplayResult {
  var ops: Int, allocs: Int, frees: Int
  var ns: UInt64
  var baseKB: Int, peakKB: Int
  var liveObjects: Int, liveBytes: Int

  init?(parsing text: String) {
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("goalloc-replay ") }) else { return nil }
    var f: [String: String] = [:]
    for part in line.split(separator: " ").dropFirst() {
      let kv = part.split(separator: "=", maxSplits: 1)
      if kv.count == 2 { f[String(kv[0])] = String(kv[1]) }
    }
    guard let ops = f["ops"].flatMap({ Int($0) }), let allocs = f["allocs"].flatMap({ Int($0) }),
          let frees = f["frees"].flatMap({ Int($0) }), let ns = f["ns"].flatMap({ UInt64($0) }),
          let base = f["base_rss_kb"].flatMap({ Int($0) }), let peak = f["peak_rss_kb"].flatMap({ Int($0) }),
          let lo = f["live_objects"].flatMap({ Int($0) }), let lb = f["live_bytes"].flatMap({ Int($0) }) else { return nil }
    self.ops = ops; self.allocs = allocs; self.frees = frees; self.ns = ns
    self.baseKB = base; self.peakKB = peak; self.liveObjects = lo; self.liveBytes = lb
  }
}

/// An allocator to replay under: nil library = glibc's malloc (no preload).
struct ReplayAllocator {
  var name: String
  var library: String?

  static let names = ["glibc", "goalloc", "jemalloc", "tcmalloc", "mimalloc"]

  /// glibc, goalloc (when built) and the peers at Debian's paths (existing or not).
  static func available(goalloc: String?) -> [ReplayAllocator] {
    var list = [ReplayAllocator(name: "glibc", library: nil)]
    if let goalloc { list.append(ReplayAllocator(name: "goalloc", library: goalloc)) }
    let peers = [("jemalloc", "libjemalloc.so.2"), ("tcmalloc", "libtcmalloc_minimal.so.4"), ("mimalloc", "libmimalloc.so.2")]
    for (name, file) in peers {
      let dirs = ["/usr/lib/\(multiarch())", "/usr/lib", "/usr/local/lib"]
      let found = dirs.map { Files.join($0, file) }.first(where: Files.exists)
      list.append(ReplayAllocator(name: name, library: found ?? Files.join(dirs[0], file)))
    }
    return list
  }

  /// Debian's multiarch folder name for this machine.
  static func multiarch() -> String {
    var u = utsname()
    uname(&u)
    let machine = withUnsafeBytes(of: u.machine) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    switch machine {
    case "x86_64": return "x86_64-linux-gnu"
    case "aarch64", "arm64": return "aarch64-linux-gnu"
    default: return machine + "-linux-gnu"
    }
  }
}
