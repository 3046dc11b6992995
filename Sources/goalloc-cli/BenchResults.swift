// The results of `goalloc bench`: every sample per workload and allocator, and what the report
// reads from them (medians, the best peer, ratios to it, geometric means).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One run's measurements, as `measure` reports them.
struct Sample: Sendable {
  var wallNs = 0.0
  var cpuUs = 0.0
  var maxRssKiB = 0.0
  /// The rate the program reported (Workload.rateField of its result line: redis's requests/s).
  var rate: Double? = nil
}

/// Every run's outcome, per workload (row) and allocator (column).
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

  enum Metric {
    case wall, cpu, rss
    /// The rate a program reports (Workload.rateField), where it reports one.
    case rate
    /// Lower is better, except for a rate.
    var higherIsBetter: Bool { self == .rate }
  }

  /// The median of a metric for one cell (seconds for times, KiB for RSS); nil when no run
  /// succeeded or any run failed (a failing allocator gets no number).
  func median(_ metric: Metric, _ w: Int, _ a: Int) -> Double? {
    let cell = cells[w][a]
    guard !cell.samples.isEmpty, cell.failures.isEmpty else { return nil }
    let values = cell.samples.compactMap { s -> Double? in
      switch metric {
      case .wall: return s.wallNs / 1e9
      case .cpu: return s.cpuUs / 1e6
      case .rss: return s.maxRssKiB
      case .rate: return s.rate
      }
    }
    return values.isEmpty ? nil : Stats.median(values)
  }

  /// The peer with the best median on a workload (the lowest; for a rate, the highest).
  func bestPeer(_ metric: Metric, _ w: Int) -> (index: Int, value: Double)? {
    var best: (Int, Double)?
    for (a, allocator) in allocators.enumerated() where allocator.isPeer {
      if let v = median(metric, w, a), v > 0,
         best == nil || (metric.higherIsBetter ? v > best!.1 : v < best!.1) { best = (a, v) }
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
