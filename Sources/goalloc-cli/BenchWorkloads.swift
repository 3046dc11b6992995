// What `goalloc bench` runs: the workloads (a C program of Benchmarks/workloads/ with its full,
// --quick, callgrind and Go-mirror arguments, or an installed application: BenchApps.swift) and
// the allocators (glibc, goalloc, the Debian peers and Go's own), with the Debian packages whose
// versions the report names.

/// A workload: one C program (Benchmarks/workloads/PROGRAM.c) and its arguments, or an
/// application row (`app`; its arguments are the size of its run, see BenchApps.swift).
struct Workload: Sendable {
  let name: String
  /// The C program; for an application row, the word its result line starts with.
  let program: String
  let args: [String]
  let quickArgs: [String]
  let summary: String
  /// Two argument lists whose runs differ only in the number of operations (for --callgrind).
  var callgrindArgs: ([String], [String])? = nil
  /// Arguments for Benchmarks/go/gowork.go's mirror of this workload, when there is one.
  var goArgs: [String]? = nil
  var goQuickArgs: [String]? = nil
  /// An installed program rather than a C workload.
  var app: App? = nil
  /// A field of the result line that is a rate (higher is better), tabled in the report.
  var rateField: String? = nil
  /// Runs only under GoAlloc (and Go's mirror): it calls GoAlloc's own API (the pools).
  var goallocOnly = false

  func arguments(quick: Bool, go: Bool) -> [String] {
    go ? (quick ? goQuickArgs ?? goArgs! : goArgs!) : (quick ? quickArgs : args)
  }

  static let all: [Workload] = [
    Workload(name: "pair", program: "pair", args: ["50000000", "64"], quickArgs: ["1000000", "64"],
             summary: "1 thread: malloc(64) + write + free, 50 M times",
             callgrindArgs: (["200000", "64"], ["400000", "64"]),
             goArgs: ["50000000", "64"], goQuickArgs: ["1000000", "64"]),
    // Issue 21: GoAlloc's pools (goalloc_pool_get/put) beside pair's malloc/free of the same size,
    // and Go's sync.Pool (gowork pool); callgrind counts Go's instructions too.
    Workload(name: "pool", program: "pool", args: ["50000000", "64"], quickArgs: ["1000000", "64"],
             summary: "1 thread: goalloc_pool_get + write + goalloc_pool_put of 64 B objects, 50 M times (GoAlloc only; go: sync.Pool Get/Put)",
             callgrindArgs: (["200000", "64"], ["400000", "64"]),
             goArgs: ["50000000", "64"], goQuickArgs: ["1000000", "64"], goallocOnly: true),
    Workload(name: "pairmix", program: "pair", args: ["50000000", "0"], quickArgs: ["1000000", "0"],
             summary: "1 thread: malloc/free pairs cycling through 256 sizes of 8..511 B, 50 M times",
             callgrindArgs: (["200000", "0"], ["400000", "0"])),
    Workload(name: "pairwin", program: "pair", args: ["50000000", "0", "1024"], quickArgs: ["1000000", "0", "1024"],
             summary: "1 thread: 1024 live blocks; free a random one and allocate its replacement of 16..515 B, 50 M times",
             callgrindArgs: (["200000", "0", "1024"], ["400000", "0", "1024"])),
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
    // Patterns of issue 17 (Benchmarks/workloads/*.c say more).
    Workload(name: "ring", program: "ring", args: ["5000000", "40000"], quickArgs: ["100000", "40000"],
             summary: "1 thread: ring of 1000 live 40 000 B blocks, each step frees the oldest and allocates one (5 M steps)",
             callgrindArgs: (["100000", "40000"], ["200000", "40000"])),
    Workload(name: "ring64k", program: "ring", args: ["5000000", "65536"], quickArgs: ["100000", "65536"],
             summary: "ring with 64 KiB blocks",
             callgrindArgs: (["100000", "65536"], ["200000", "65536"])),
    Workload(name: "ring128k", program: "ring", args: ["5000000", "131072"], quickArgs: ["100000", "131072"],
             summary: "ring with 128 KiB blocks",
             callgrindArgs: (["100000", "131072"], ["200000", "131072"])),
    Workload(name: "ring200k", program: "ring", args: ["5000000", "204800"], quickArgs: ["100000", "204800"],
             summary: "ring with 200 KiB blocks",
             callgrindArgs: (["100000", "204800"], ["200000", "204800"])),
    Workload(name: "xthread", program: "xthread", args: ["4", "20000", "100"], quickArgs: ["4", "500", "100"],
             summary: "4 threads in a ring: each round a thread hands 100 blocks of 1..1000 B to the next, which frees them (LIFO, FIFO in turn) as it allocates its own; 20 k rounds"),
    Workload(name: "randsmall", program: "randsmall", args: ["2", "30000000"], quickArgs: ["2", "500000"],
             summary: "2 threads, each 64 live blocks of 8..512 B (uniform) replaced at random, 30 M times"),
    Workload(name: "trees", program: "trees", args: ["1", "4"], quickArgs: ["1", "1", "10", "10"],
             summary: "1 thread: binary trees of 24 B nodes, depths 4..16, built, walked and freed (14.6 M nodes) beside a long-lived tree of depth 16",
             callgrindArgs: (["1", "1", "12", "8"], ["1", "2", "12", "8"])),
    Workload(name: "trees2", program: "trees", args: ["2", "4"], quickArgs: ["2", "1", "10", "10"],
             summary: "trees on 2 threads at once (each the 1-thread row's work), one long-lived tree"),
    Workload(name: "pareto", program: "pareto", args: ["1", "10000000"], quickArgs: ["1", "200000"],
             summary: "1 thread: 10 k live blocks of Pareto sizes (shape 1, 8 B..1 KiB, mean 39 B), 10 M random replaces",
             callgrindArgs: (["1", "200000"], ["1", "400000"])),
    Workload(name: "pareto2", program: "pareto", args: ["2", "10000000"], quickArgs: ["2", "200000"],
             summary: "pareto on 2 threads at once (10 M replaces each)"),
    Workload(name: "falseshare", program: "falseshare", args: ["2", "50000"], quickArgs: ["2", "1000"],
             summary: "2 threads: 8 blocks of 8..64 B each, 1000 writes to every block, then freed; 50 k rounds (slow if the threads' blocks share cache lines)"),
    Workload(name: "server", program: "server", args: ["4", "1000000"], quickArgs: ["4", "20000"],
             summary: "4 threads replace random blocks (16 B..4 KiB) of one shared array of 10 k (atomic exchange): most frees are of another thread's block; 4 M replaces"),
    // Applications (BenchApps.swift): the argument is the size of the run.
    Workload(name: "redis", program: "redis", args: ["200000"], quickArgs: ["2000"],
             summary: "redis-server under the allocator, redis-benchmark -t set,get,lpush,lpop -n 200000 -r 100000 -P 16 -d 64 on loopback; time: the benchmark's, CPU and RSS: the server's",
             app: .redis, rateField: "rps"),
    Workload(name: "python", program: "pyalloc", args: ["40"], quickArgs: ["1"],
             summary: "CPython (PYTHONMALLOC=malloc) on Benchmarks/apps/pyalloc.py: dicts, strings, lists and a cache, 40 rounds",
             app: .python),
    Workload(name: "sqlite", program: "sqlwrite", args: ["30000"], quickArgs: ["300"],
             summary: "sqlite3 :memory: on a generated write-heavy script: 30 k steps of inserts into indexed tables, updates and deletes",
             app: .sqlite),
    Workload(name: "gcc", program: "gcc", args: ["160"], quickArgs: ["4"],
             summary: "gcc -O2 -c on a generated C file of 160 functions (driver, cc1 and as under the allocator)",
             app: .gcc),
  ]
}

struct Allocator: Sendable {
  let name: String
  let preload: String?
  /// A peer counts for "best peer": glibc, jemalloc, tcmalloc, mimalloc (not goalloc, not Go).
  let isPeer: Bool
  var isGo = false

  func runs(_ workload: Workload) -> Bool {
    if isGo { return workload.goArgs != nil }
    return !workload.goallocOnly || name == "goalloc"
  }

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
