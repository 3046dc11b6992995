// swift-tools-version: 6.1
// A small Hummingbird 2 HTTP server whose allocations are GoAlloc's: the dependency on the
// GoAllocOverride product is the one line that does it (no LD_PRELOAD). Built by
// Tests/PreloadTests/OverrideTests.swift when GOALLOC_EXAMPLES=1 (.ci/run sets it).
import PackageDescription

let package = Package(
  name: "HelloServer",
  platforms: [.macOS(.v14)],
  dependencies: [
    .package(name: "goalloc", path: "../.."),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
  ],
  targets: [
    .executableTarget(
      name: "HelloServer",
      dependencies: [
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "GoAllocOverride", package: "goalloc"),  // GoAlloc is this process's malloc
      ]),
  ]
)
