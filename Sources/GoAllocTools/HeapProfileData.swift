// A heap profile as the library writes it (GOALLOC_DEBUG=memprofile=FILE or
// goalloc_write_heap_profile; format in Sources/GoAllocCore/HeapProfile.swift): the sampling
// rate, one record per live sampled object (size and return addresses, innermost first), and
// the executable mappings. Records with the same stack merge, and each is unsampled as Go's
// pprof does: a sampled object of `size` bytes stands for 1 / (1 - exp(-size/rate)) objects.

import Foundation

public struct HeapProfileData: Sendable {
  public static let header = "# goalloc heapprofile v1"

  public struct Sample: Sendable, Equatable {
    public var size: UInt64
    public var pcs: [UInt]     // innermost first
  }

  /// The samples of one call stack, merged and unsampled.
  public struct Stack: Sendable {
    public var pcs: [UInt]     // innermost first
    public var objects: Int64  // estimated live objects
    public var bytes: Int64    // estimated live bytes
    public var sampled: Int    // sampled objects behind the estimate
  }

  public var rate: UInt64 = 524_288
  public var samples: [Sample] = []
  public var mappings: [TraceMapping] = []

  public init(path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw AllocationTraceError(line: 0, message: "cannot read \(path)")
    }
    try self.init(text: String(decoding: data, as: UTF8.self))
  }

  public init(text: String) throws {
    var sawHeader = false
    for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = raw.trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      func fail(_ m: String) -> AllocationTraceError { AllocationTraceError(line: n + 1, message: m) }
      if line == Self.header { sawHeader = true; continue }
      let f = line.split(separator: " ", omittingEmptySubsequences: true)
      if line.hasPrefix("# rate ") {
        guard f.count == 3, let r = UInt64(f[2]), r > 0 else { throw fail("bad rate line: \(line)") }
        rate = r
      } else if line.hasPrefix("# map ") {
        guard f.count >= 6, let s = Self.hex(f[2]), let e = Self.hex(f[3]), let o = Self.hex(f[4]) else {
          throw fail("bad map line: \(line)")
        }
        mappings.append(TraceMapping(start: s, end: e, offset: o, path: f[5...].joined(separator: " ")))
      } else if line.hasPrefix("#") {
        continue
      } else if f.first == "s" {
        guard sawHeader else { throw fail("sample before the \"\(Self.header)\" line (not a goalloc heap profile?)") }
        guard f.count >= 2, let size = UInt64(f[1]) else { throw fail("bad sample line: \(line)") }
        var pcs: [UInt] = []
        for t in f.dropFirst(2) {
          guard let pc = Self.hex(t) else { throw fail("bad address \(t)") }
          pcs.append(pc)
        }
        samples.append(Sample(size: size, pcs: pcs))
      } else {
        throw fail("unknown line: \(line)")
      }
    }
    if !sawHeader { throw AllocationTraceError(line: 1, message: "not a goalloc heap profile (no \"\(Self.header)\" line)") }
  }

  static func hex<S: StringProtocol>(_ s: S) -> UInt? {
    s.hasPrefix("0x") ? UInt(s.dropFirst(2), radix: 16) : nil
  }

  /// Go's unsampling of one sampled object of `size` bytes at mean sampling distance `rate`.
  public static func scale(size: UInt64, rate: UInt64) -> (objects: Double, bytes: Double) {
    if rate <= 1 || size == 0 { return (1, Double(size)) }
    let p = 1 - exp(-Double(size) / Double(rate))
    return (1 / p, Double(size) / p)
  }

  /// The samples merged by call stack, largest estimated bytes first.
  public func stacks() -> [Stack] {
    var byStack: [[UInt]: (Double, Double, Int)] = [:]
    for s in samples {
      let (o, b) = Self.scale(size: s.size, rate: rate)
      let old = byStack[s.pcs] ?? (0, 0, 0)
      byStack[s.pcs] = (old.0 + o, old.1 + b, old.2 + 1)
    }
    return byStack.map { Stack(pcs: $0.key, objects: Int64($0.value.0.rounded()), bytes: Int64($0.value.1.rounded()), sampled: $0.value.2) }
      .sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.pcs.lexicographicallyPrecedes($1.pcs) }
  }

  /// Folded stacks ("root;...;leaf bytes" per line) with frames named by `name`.
  public func folded(name: (UInt) -> String) -> String {
    var merged: [String: Int64] = [:]
    for s in stacks() {
      let frames = s.pcs.isEmpty ? ["[unknown]"] : s.pcs.reversed().map { name($0).replacingOccurrences(of: ";", with: ":") }
      merged[frames.joined(separator: ";"), default: 0] += s.bytes
    }
    return merged.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
  }
}
