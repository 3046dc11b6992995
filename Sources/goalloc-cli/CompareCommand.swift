// `goalloc compare [--runs N] [--heapmap FILE.svg] -- CMD [ARGS...]`: one program under glibc,
// GoAlloc and the peers that are installed (jemalloc, tcmalloc, mimalloc via LD_PRELOAD), in one
// short table: median wall time and peak RSS of each, as ratios to glibc; then GoAlloc's own
// MemStats of the command's process in its last run (picked by pid: helpers it starts are left
// out), with units; and, with --heapmap, a picture of that process's heap at exit. What
// Scripts/run-demo.sh shows.
//
// Each round runs every allocator once, in an order that rotates from round to round, so a
// drifting load on a shared machine falls on all of them alike. Standard input is /dev/null; the
// command's output is kept and compared with glibc's (a difference is reported, not fatal).

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct CompareCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Run a command under glibc, GoAlloc and the installed peers, and compare them.",
    discussion: """
      Runs the command --runs times under each allocator: glibc's malloc (no preload), GoAlloc \
      (libgoalloc.so, as `goalloc preload-path` finds it) and jemalloc, tcmalloc and mimalloc \
      when Debian's packages are installed (Scripts/install-peers.sh). Prints the median wall \
      time and peak RSS of each, GoAlloc's statistics of the command's own process in its last \
      run (not of programs it starts), and with --heapmap draws that process's heap at exit. Put \
      `--` before the command. Give the program itself, not a wrapper script that \
      starts it (a pyenv shim, say): the times and RSS are the command's process's. The exit \
      status is 0 when every run succeeded, else 1.
      """
  )

  @Option(help: "Runs under each allocator; the median is shown.")
  var runs = 3

  @Option(name: .customLong("heapmap"), help: ArgumentHelp(
    "Also draw GoAlloc's heap at the command's exit as an SVG picture in this file.", valueName: "file.svg"))
  var heapmap: String?

  @Option(name: .customLong("allocator"), help: "Run only these allocators (repeatable): glibc, goalloc, jemalloc, tcmalloc, mimalloc.")
  var allocatorFilter: [String] = []

  @Argument(parsing: .postTerminator, help: "The command to run and its arguments (after `--`).")
  var command: [String] = []

  func validate() throws {
    if runs < 1 { throw ValidationError("--runs must be at least 1.") }
    let names = ["glibc", "goalloc"] + Allocator.peerLibraries.map(\.0)
    for name in allocatorFilter where !names.contains(name) {
      throw ValidationError("unknown allocator \(name); known: \(names.joined(separator: ", "))")
    }
    if let h = heapmap, h.isEmpty { throw ValidationError("--heapmap needs a file name.") }
  }

  /// One allocator's runs.
  struct Subject {
    var name: String
    var preload: String?
    var wall: [Double] = []
    var rssKiB: [Double] = []
    var failure: String?
    var outputDiffers = false
    var stats: StatsBlock?
  }

  func run() throws {
    guard !command.isEmpty else {
      throw ValidationError("missing command; usage: goalloc compare [--runs N] [--heapmap FILE.svg] -- CMD [ARGS...]")
    }
    guard Which.find(command[0]) != nil else {
      printError("goalloc compare: cannot execute \(command[0]): not found")
      throw ExitCode(127)
    }
    let library = try Preload.libraryPath()
    var subjects: [Subject] = [Subject(name: "glibc", preload: nil), Subject(name: "goalloc", preload: library)]
    var skipped: [String] = []
    for (name, path) in Allocator.peerLibraries {
      if access(path, R_OK) == 0 { subjects.append(Subject(name: name, preload: path)) } else { skipped.append(name) }
    }
    if !allocatorFilter.isEmpty { subjects = subjects.filter { allocatorFilter.contains($0.name) } }

    let dir = try Files.temporaryDirectory("compare")
    defer { Files.removeDirectory(dir) }
    let progress = Progress(total: runs * subjects.count,
                            what: "\(Files.baseName(command[0])) under \(subjects.count) allocators, "
                              + Self.plural(UInt64(runs), "run") + " each")
    var reference: String?   // glibc's output (or the first allocator's)
    var sample = ""
    let mapFile = Files.join(dir, "heapmap.txt")
    for round in 0..<runs {
      for k in 0..<subjects.count {
        let i = (k + round) % subjects.count
        progress.step("\(subjects[i].name), run \(round + 1) of \(runs)")
        var debug: [(String, String)] = []
        if subjects[i].name == "goalloc" {
          debug.append(("stats", "1"))
          // The last run's heap map: the same process as the statistics shown.
          if heapmap != nil && round == runs - 1 { debug.append(("heapmap", mapFile)) }
        }
        let result = try runOnce(subjects[i], dir: dir, debug: debug)
        record(result, into: &subjects[i], reference: &reference, sample: &sample, firstIsGlibc: subjects[0].name == "glibc")
      }
    }
    var mapLine: String?
    if let heapmap, subjects.contains(where: { $0.name == "goalloc" }) {
      mapLine = drawHeapMap(mapFile, svgPath: heapmap)
    }
    progress.finish()
    print(report(subjects, skipped: skipped, sample: sample, mapLine: mapLine))
    if subjects.contains(where: { $0.failure != nil }) { throw ExitCode.failure }
  }

  /// How one run went.
  struct RunResult {
    var end: ChildProcess.Termination
    var wall: Double
    var rssKiB: Double
    var stdout: String
    var stderr: String
    var pid: pid_t
  }

  func environment(_ s: Subject, debug: [(String, String)]) -> [String] {
    var set: [(String, String?)] = [("LD_PRELOAD", s.preload)]
    if !debug.isEmpty {
      set.append(("GOALLOC_DEBUG", ChildProcess.debugValue(RunCommand.environment("GOALLOC_DEBUG"), setting: debug)))
    }
    return ChildProcess.environment(set)
  }

  func runOnce(_ s: Subject, dir: String, debug: [(String, String)]) throws -> RunResult {
    let out = Files.join(dir, "stdout"), err = Files.join(dir, "stderr")
    let o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    let e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    let i = open("/dev/null", O_RDONLY | O_CLOEXEC)
    defer { for fd in [o, e, i] where fd >= 0 { close(fd) } }
    guard o >= 0, e >= 0 else {
      printError("goalloc compare: cannot write in \(dir): \(String(cString: strerror(errno)))")
      throw ExitCode.failure
    }
    let start = Clock.now()
    let pid = try ChildProcess.spawn(command, env: environment(s, debug: debug), stdinFD: i >= 0 ? i : nil,
                                     stdoutFD: o, stderrFD: e, command: "goalloc compare")
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
      if errno != EINTR { status = 127 << 8; break }
    }
    let wall = Clock.now() - start
    return RunResult(end: ChildProcess.Termination(waitStatus: status), wall: wall, rssKiB: Double(usage.ru_maxrss),
                     stdout: Files.read(out) ?? "", stderr: Files.read(err) ?? "", pid: pid)
  }

  func record(_ r: RunResult, into s: inout Subject, reference: inout String?, sample: inout String, firstIsGlibc: Bool) {
    if r.end.exitCode != 0 {
      let tail = r.stderr.split(separator: "\n").filter { StatsLineFilter.parse(Array($0.utf8)) == nil }
        .suffix(2).joined(separator: " | ")
      s.failure = r.end.description + (tail.isEmpty ? "" : ": " + tail)
      return
    }
    s.wall.append(r.wall)
    s.rssKiB.append(r.rssKiB)
    if reference == nil && (s.name == "glibc" || !firstIsGlibc) { reference = r.stdout; sample = r.stdout }
    if let ref = reference, ref != r.stdout { s.outputDiffers = true }
    if s.name == "goalloc" {
      var filter = StatsLineFilter()
      filter.feedSilently(Array(r.stderr.utf8))
      if let own = filter.blocks.last(where: { $0.pid == r.pid }) { s.stats = own }
    }
  }

  /// The SVG of the heap map the last GoAlloc run wrote: its path and totals, or why there is none.
  func drawHeapMap(_ mapFile: String, svgPath: String) -> String {
    guard let text = Files.read(mapFile), !text.isEmpty, let map = try? HeapMap(parsing: text) else {
      return "Heap map: none was written (the command's process must exit normally)"
    }
    let svg = HeapMapSVG.render(map, title: command.joined(separator: " "))
    guard (try? Files.writeFile(svgPath, svg, command: "goalloc compare")) != nil else { return "Heap map: not written" }
    let t = map.totals
    return "Heap map of that process's heap at exit: \(svgPath)\n  \(t.spans) spans in "
      + "\(GoAllocFormat.bytes(t.inUseBytes)) of pages, \(GoAllocFormat.bytes(t.freeBytes)) of free pages, "
      + "\(GoAllocFormat.bytes(t.releasedBytes)) released; open it in a browser and hover over a span"
  }

  // MARK: the report

  func report(_ subjects: [Subject], skipped: [String], sample: String, mapLine: String?) -> String {
    let shown = [Files.baseName(command[0])] + command.dropFirst()
    var out = "\(shown.joined(separator: " ")): median of \(runs) run\(runs == 1 ? "" : "s") under each allocator\n\n"
    let base = subjects.first { $0.name == "glibc" && $0.failure == nil }
    let rows: [[String]] = [["allocator", "wall time", "vs glibc", "peak RSS", "vs glibc"]] + subjects.map { s in
      if let f = s.failure { return [s.name, "failed: \(f)"] }
      let t = median(s.wall), rss = median(s.rssKiB) * 1024
      return [s.name, GoAllocFormat.fixed(t, 2) + " s", base.map { Self.ratio(t / median($0.wall)) } ?? "",
                 GoAllocFormat.bytes(Int(rss)), base.map { Self.ratio(rss / (median($0.rssKiB) * 1024)) } ?? ""]
    }
    out += Self.columns(rows, rightAligned: [1, 2, 3, 4]) + "\n"
    for s in subjects where s.outputDiffers { out += "\(s.name): the command's output differs from glibc's\n" }
    if !skipped.isEmpty { out += "(not installed: \(skipped.joined(separator: ", ")); Scripts/install-peers.sh installs them)\n" }
    let lines = sample.split(separator: "\n", omittingEmptySubsequences: false).dropLast(sample.hasSuffix("\n") ? 1 : 0)
    if lines.count == 1, let only = lines.first, only.count <= 100 {
      out += "Output, the same under every allocator unless noted: \(only)\n"
    } else if !lines.isEmpty {
      out += "Output: \(lines.count) lines, the same under every allocator unless noted\n"
    }
    if let g = subjects.first(where: { $0.name == "goalloc" }) {
      out += "\n" + memStatsSummary(g)
    }
    if let mapLine { out += "\n" + mapLine + "\n" }
    return out
  }

  /// GoAlloc's figures of the command's process, in words and units.
  func memStatsSummary(_ g: Subject) -> String {
    guard let block = g.stats else {
      return "GoAlloc's statistics: none from the command's process (it must exit normally and be dynamically linked)\n"
    }
    var f: [String: UInt64] = [:]
    for (k, v) in block.fields { f[k] = v }
    func b(_ k: String) -> String { GoAllocFormat.bytes(Int(clamping: f[k] ?? 0)) }
    let mallocs = f["Mallocs"] ?? 0, frees = f["Frees"] ?? 0
    let t = median(g.wall)
    var rows: [[String]] = []
    rows.append(["operations", "\(Self.count(mallocs)) mallocs, \(Self.count(frees)) frees"
                 + (t > 0 ? " (\(Self.count(UInt64(Double(mallocs + frees) / t))) per second)" : "")])
    rows.append(["allocated", "\(b("TotalAlloc")) in all; \(b("HeapAlloc")) in \(Self.count(f["HeapObjects"] ?? 0)) objects live at exit"])
    rows.append(["heap", "\(b("HeapInuse")) of pages in spans (HeapInuse), \(b("HeapIdle")) idle (HeapIdle), "
                 + "\(b("HeapReleased")) of that returned to the OS"])
    rows.append(["from the OS", "\(b("Sys")) of memory (Sys) in \(b("SysReserved")) of reserved address space (SysReserved)"])
    rows.append(["overheads", "\(b("RoundingWaste")) lost to size-class rounding; "
                 + "\(Self.plural(f["SpansInUse"] ?? 0, "span")) and \(Self.plural(f["ThreadCaches"] ?? 0, "thread cache")) "
                 + "at exit; \(Self.plural(f["BadFrees"] ?? 0, "bad free"))"])
    return "GoAlloc's MemStats at the exit of \(block.label), from its last run:\n" + Self.columns(rows, indent: "  ")
  }

  /// Rows as aligned columns (widths from the rows with the most cells; a shorter row's last cell
  /// runs on).
  static func columns(_ rows: [[String]], rightAligned: Set<Int> = [], indent: String = "  ") -> String {
    let full = rows.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: full)
    for r in rows where r.count == full { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    var out = ""
    for r in rows {
      var line = indent
      for (i, c) in r.enumerated() {
        if i == r.count - 1 && r.count < full { line += c; break }
        line += (rightAligned.contains(i) ? c.padLeft(widths[i]) : c.pad(widths[i])) + "   "
      }
      out += line.replacingTrailingSpaces() + "\n"
    }
    return out
  }

  static func plural(_ n: UInt64, _ noun: String) -> String { "\(n) \(noun)" + (n == 1 ? "" : "s") }

  static func ratio(_ x: Double) -> String { GoAllocFormat.fixed(x, 2) + "x" }

  /// 950, 12.3 k, 4.31 M, 1.20 G.
  static func count(_ n: UInt64) -> String {
    let v = Double(n)
    if v < 1000 { return String(n) }
    if v < 1e6 { return GoAllocFormat.fixed(v / 1e3, v < 1e4 ? 2 : 1) + " k" }
    if v < 1e9 { return GoAllocFormat.fixed(v / 1e6, v < 1e7 ? 2 : 1) + " M" }
    return GoAllocFormat.fixed(v / 1e9, 2) + " G"
  }

  func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }
}

/// A progress line on standard error: rewritten in place on a terminal, else one line at the start.
final class Progress {
  let total: Int
  var done = 0
  let tty = isatty(2) != 0

  init(total: Int, what: String) {
    self.total = total
    if !tty { printError("goalloc compare: running \(what) ...") }
  }

  func step(_ text: String) {
    done += 1
    guard tty else { return }
    write("\r\u{1B}[K[\(done)/\(total)] \(text) ...")
  }

  func finish() { if tty { write("\r\u{1B}[K") } }

  private func write(_ s: String) {
    let bytes = Array(s.utf8)
    _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress!, $0.count) }
  }
}
