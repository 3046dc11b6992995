// What `goalloc bench` runs: the workloads (a C program of Benchmarks/workloads/ with its full,
// --quick, callgrind and Go-mirror arguments) and the allocators (glibc, goalloc, the Debian
// peers and Go's own), with the Debian packages whose versions the report names.

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
             summary: "1 thread: malloc/free pairs cycling through 256 sizes of 8..511 B, 50 M times",
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
            let v = BenchChild.capture(["dpkg-query", "-W", "-f", "${Version}", pkg])?.trimmed, !v.isEmpty else { return nil }
      return "\(a.name) (\(pkg) \(v))"
    }
  }
}
