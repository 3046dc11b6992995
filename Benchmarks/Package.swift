// swift-tools-version: 6.1
// GoAlloc's Swift-API benchmarks (ordo-one/benchmark). A nested package, so the root package's
// `swift test` never builds the benchmark stack. Run: `cd Benchmarks && swift package benchmark`.
import PackageDescription

// A path dependency's identity is its folder's name ("main" in /work/main, something else in CI
// checkouts), so derive it instead of spelling it.
let rootIdentity = String(Context.packageDirectory.split(separator: "/").dropLast().last!).lowercased()

let package = Package(
  name: "benchmarks",
  platforms: [.macOS(.v13)],
  dependencies: [
    .package(path: "../"),
    // MallocInterposer: the default RuntimeInterposer trait needs a package that is not mirrored here.
    .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
  ],
  targets: [
    .executableTarget(
      name: "GoAllocBenchmarks",
      dependencies: [
        .product(name: "Benchmark", package: "benchmark"),
        .product(name: "GoAlloc", package: rootIdentity),
      ],
      path: "Benchmarks/GoAllocBenchmarks",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
  ]
)
