// The Markdown report of `goalloc bench` (OUT/results.md, also printed): the run's context, the
// tables of medians and ratios, the geometric means, instructions per operation, the targets of
// issue 5, the workloads and their result lines, failures; and the number and machine
// descriptions it is written with.

import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
    md += "- Suite time: \(GoAllocFormat.fixed(c.elapsedS, 0)) s. Peers: \(c.peerVersions.isEmpty ? "see below" : c.peerVersions.joined(separator: ", ")).\n"
    md += "- Ratios are to the best peer on the row (the best of glibc, jemalloc, tcmalloc, mimalloc; marked **bold**); lower is better (higher, for the rates programs report).\n"
    if r.workloads.contains(where: { $0.app != nil }) {
      md += "- Application rows run installed programs with the allocator preloaded (under glibc: libc.so.6 preloaded, "
      md += "as Debian's redis-server links jemalloc). redis: the time is redis-benchmark's wall time, CPU and peak RSS are "
      md += "redis-server's; gcc: peak RSS is the largest of the driver, cc1 and as.\n"
    }
    for note in c.notes { md += "- Note: \(note)\n" }

    md += "\n## Median wall time (ratio to the best peer)\n\n" + table(r, .wall)
    md += "\n## Median peak RSS (ratio to the best peer)\n\n" + table(r, .rss)
    md += "\n## Median CPU time, user + sys (ratio to the best peer)\n\n" + table(r, .cpu)
    if r.workloads.contains(where: { $0.rateField != nil }) {
      md += "\n## Median rate reported by the program (ratio to the best peer; higher is better)\n\n"
      md += "redis: requests per second over redis-benchmark's four tests, in thousands.\n\n" + table(r, .rate)
    }
    md += "\n## GoAlloc against each peer: geometric mean over the workloads of GoAlloc / peer\n\n"
    md += geomeanTable(r)
    if !instructions.isEmpty { md += "\n## Instructions per operation (callgrind)\n\n" + instructionTable(r, instructions) }
    if r.workloads.contains(where: { $0.name == "pool" }) {
      md += "\n## Pools (issue 21): a Get/Put pair against a malloc/free pair and Go's sync.Pool\n\n" + poolSection(r, instructions)
    }
    md += "\n## Targets of issue 5\n\n" + targets(r, instructions: instructions)
    md += "\n## Targets of issue 17\n\n" + targets17(r, instructions: instructions)
    md += "\n## Workloads\n\n| workload | what it does |\n| --- | --- |\n"
    for w in r.workloads { md += "| \(w.name) | \(w.summary) |\n" }
    md += "\n## Result lines printed by the workloads (last successful run)\n\n```\n"
    for (w, workload) in r.workloads.enumerated() {
      for (a, allocator) in r.allocators.enumerated() where !r.cells[w][a].line.isEmpty {
        md += "\(workload.name.pad(10)) \(allocator.name.pad(9)) \(r.cells[w][a].line)\n"
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
    switch metric {
    case .rss: return Fmt.mib(v)
    case .rate: return GoAllocFormat.fixed(v / 1000, 1) + " k"
    case .wall, .cpu: return Fmt.seconds(v)
    }
  }

  static func table(_ r: Results, _ metric: Results.Metric) -> String {
    var md = "| workload | " + r.allocators.map(\.name).joined(separator: " | ") + " |\n"
    md += "| --- |" + String(repeating: " ---: |", count: r.allocators.count) + "\n"
    for (w, workload) in r.workloads.enumerated() where metric != .rate || workload.rateField != nil {
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
    // Go's column only where it was counted (pool: sync.Pool).
    let names = r.allocators.filter { !$0.isGo || ir.values.contains { $0["go"] != nil } }.map(\.name)
    var md = "Whole-program instructions per operation, from two runs at different iteration counts "
    md += "(workload code included, the same for every allocator; an operation is one malloc/free pair, "
    md += "one replace, one realloc call, or one pool Get/Put pair). Ratio to glibc in brackets.\n\n"
    md += "| workload | " + names.joined(separator: " | ") + " |\n| --- |" + String(repeating: " ---: |", count: names.count) + "\n"
    for workload in r.workloads {
      guard let row = ir[workload.name] else { continue }
      md += "| \(workload.name) |"
      for name in names {
        if let v = row[name] {
          md += " \(GoAllocFormat.fixed(v, 1))" + (row["glibc"].map { " (\(Fmt.ratio(v / $0)))" } ?? "") + " |"
        } else {
          md += " - |"
        }
      }
      md += "\n"
    }
    return md
  }

  /// The pool row beside pair's malloc/free of the same size (64 B) and Go's sync.Pool: the
  /// instructions of one iteration (loop included) and the nanoseconds of the median run per iteration.
  static func poolSection(_ r: Results, _ ir: [String: [String: Double]]) -> String {
    guard let pw = r.workloads.firstIndex(where: { $0.name == "pool" }) else { return "" }
    let mw = r.workloads.firstIndex { $0.name == "pair" }
    // The median run's wall time over its iterations (process start-up included: under 1 %).
    func ns(_ w: Int?, _ name: String) -> String {
      guard let w, let a = r.index(of: name), let t = r.median(.wall, w, a),
            let ops = Report.parseFields(r.cells[w][a].line)["ops"].flatMap(Double.init), ops > 0 else { return "-" }
      return GoAllocFormat.fixed(t * 1e9 / ops, 2)
    }
    func instr(_ workload: String, _ name: String) -> String {
      ir[workload]?[name].map { GoAllocFormat.fixed($0, 1) } ?? "-"
    }
    var md = "One iteration of each loop (object or block of 64 B, one byte written): instructions from "
    md += "callgrind (--callgrind; the loop's own included), and nanoseconds: the median run's wall time over its iterations.\n\n"
    md += "| what | instructions | ns |\n| --- | ---: | ---: |\n"
    md += "| GoAlloc pool: goalloc_pool_get + goalloc_pool_put | \(instr("pool", "goalloc")) | \(ns(pw, "goalloc")) |\n"
    for a in r.allocators where !a.isGo {
      md += "| \(a.name): malloc + free (pair) | \(instr("pair", a.name)) | \(ns(mw, a.name)) |\n"
    }
    if r.index(of: "go") != nil {
      md += "| Go: sync.Pool Get + Put (gowork pool) | \(instr("pool", "go")) | \(ns(pw, "go")) |\n"
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
        md += "- pair, instructions vs glibc: \(GoAllocFormat.fixed(ig, 1)) vs \(GoAllocFormat.fixed(il, 1)) per pair: \(verdict(ig < il))\n"
      } else {
        md += "- pair, instructions vs glibc: not measured (run with --callgrind)\n"
      }
      if let mi = r.index(of: "mimalloc"), let tm = r.median(.wall, w, mi) {
        md += "- pair, time within 1.2x of mimalloc: \(Fmt.ratio(t / tm)): \(verdict(t / tm <= 1.2))\n"
      }
    }
    for (name, limit) in [("jemalloc", 1.0), ("tcmalloc", 1.0), ("mimalloc", 1.15)] {
      if let p = r.index(of: name), let gm = r.geomean(.wall, g, against: p) {
        md += "- geometric mean of time ratios vs \(name) <= \(GoAllocFormat.fixed(limit, 2)): \(Fmt.ratio(gm.value)) over \(gm.count) workloads: \(verdict(gm.value <= limit))\n"
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

  /// Issue 17's targets: every workload within 1.05x of the best peer's time and peak RSS, the
  /// geometric mean of time at most 0.95x the best peer's, a pair in at most 90 instructions.
  static func targets17(_ r: Results, instructions: [String: [String: Double]]) -> String {
    guard let g = r.index(of: "goalloc") else { return "(goalloc was not run)\n" }
    var md = ""
    var slow: [String] = [], fat: [String] = []
    for (w, workload) in r.workloads.enumerated() {
      if let x = r.ratio(.wall, w, g), x > 1.05 { slow.append("\(workload.name) \(Fmt.ratio(x))") }
      if let x = r.ratio(.rss, w, g), x > 1.05 { fat.append("\(workload.name) \(Fmt.ratio(x))") }
    }
    md += "- time within 1.05x of the best peer on every workload: \(slow.isEmpty ? "met" : "**missed**: " + slow.joined(separator: ", "))\n"
    md += "- peak RSS within 1.05x of the best peer on every workload: \(fat.isEmpty ? "met" : "**missed**: " + fat.joined(separator: ", "))\n"
    if let gm = r.geomean(.wall, g, against: nil) {
      md += "- geometric mean of time vs the best peer <= 0.95x: \(Fmt.ratio(gm.value)) over \(gm.count) workloads: \(gm.value <= 0.95 ? "met" : "**missed**")\n"
    }
    // The issue's pair is one of mixed small sizes; pair, pairmix and pairwin are three loops of it.
    for name in ["pair", "pairmix", "pairwin"] {
      if let ig = instructions[name]?["goalloc"] {
        md += "- \(name) in at most 90 instructions, loop included: \(GoAllocFormat.fixed(ig, 1)): \(ig <= 90 ? "met" : "**missed**")\n"
      } else {
        md += "- \(name) in at most 90 instructions: not measured (run with --callgrind)\n"
      }
    }
    return md
  }
}

/// What the report says about the machine: load, hardware, date.
enum Machine {
  static func loadAverage() -> String {
    (Files.read("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(separator: ", ")
  }

  static func description() -> String {
    let cpu = (Files.read("/proc/cpuinfo") ?? "").split(separator: "\n")
      .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmed ?? "unknown CPU"
    let memKiB = (Files.read("/proc/meminfo") ?? "").split(separator: "\n")
      .first { $0.hasPrefix("MemTotal:") }?.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
    let kernel = (Files.read("/proc/sys/kernel/osrelease") ?? "?").trimmed
    return "\(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs (\(cpu)), \(GoAllocFormat.fixed(memKiB / 1048576, 1)) GiB RAM, Linux \(kernel)"
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

/// The report's numbers: times, sizes and ratios.
enum Fmt {
  static func seconds(_ s: Double) -> String {
    s < 10 ? GoAllocFormat.fixed(s, 3) + " s" : GoAllocFormat.fixed(s, 1) + " s"
  }
  static func mib(_ kib: Double) -> String {
    let m = kib / 1024
    return (m < 10 ? GoAllocFormat.fixed(m, 2) : GoAllocFormat.fixed(m, 1)) + " MiB"
  }
  static func ratio(_ r: Double) -> String { GoAllocFormat.fixed(r, 2) + "x" }
}

extension StringProtocol {
  /// Without leading and trailing spaces, tabs and newlines.
  var trimmed: String {
    String(drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" }).reversed()
      .drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" }).reversed())
  }
}
