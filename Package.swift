// swift-tools-version: 6.1
import PackageDescription

/// Embedded Swift for the drop-in library: no Swift runtime, no system malloc.
let embedded: [SwiftSetting] = [.enableExperimentalFeature("Embedded")]

/// The core's hot paths: no exclusivity checks (all state lives behind raw pointers anyway).
let coreSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]

let package = Package(
  name: "goalloc",
  products: [
    .library(name: "GoAlloc", targets: ["GoAlloc"]),
    .library(name: "GoAllocTools", targets: ["GoAllocTools"]),
    .library(name: "goalloc", type: .dynamic, targets: ["libgoalloc"]),  // -> libgoalloc.so
    // One line in a Swift executable's dependencies makes GoAlloc its malloc: the executable links
    // this library (the same code as libgoalloc.so), whose malloc/free the loader finds first.
    .library(name: "GoAllocOverride", type: .dynamic, targets: ["libgoalloc"]),
    .executable(name: "goalloc-cli", targets: ["goalloc-cli"]),
    .executable(name: "mksizeclasses", targets: ["mksizeclasses"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    // The size-class generator (Go's rules -> the table and the C header goalloc_sizeclasses.h).
    // It depends on nothing, so `mksizeclasses` (run by Scripts/gen-sizeclasses.sh) builds even
    // when the header that everything else compiles against is broken.
    .target(name: "SizeClassGenerator"),
    .executableTarget(name: "mksizeclasses", dependencies: ["SizeClassGenerator"]),
    // DWARF 4 debug info: valgrind 3.19 (callgrind counts in the benchmarks) cannot read DWARF 5.
    // Unwind tables and frame pointers in every C function (the Swift code's unwind entries are
    // registered at load: Sources/CGoAllocShim/unwind.c); libgcc_s for _Unwind_Backtrace.
    .target(name: "CGoAllocShim",
            cSettings: [.unsafeFlags(["-gdwarf-4", "-ffunction-sections", "-funwind-tables",
                                      "-fasynchronous-unwind-tables", "-fno-omit-frame-pointer"])],
            linkerSettings: [.linkedLibrary("gcc_s")]),
    // The libc names of libgoalloc.so (default visibility; trampolines to the Swift exports).
    .target(name: "CGoAllocABI", cSettings: [.unsafeFlags(["-fno-builtin", "-gdwarf-4", "-funwind-tables",
                                                            "-fasynchronous-unwind-tables", "-fno-omit-frame-pointer"])]),
    .target(name: "GoAllocCore", dependencies: ["CGoAllocShim"], swiftSettings: coreSettings),
    // One section per function, so the library's link (--gc-sections) drops the code it never
    // calls: 70 KiB of text instead of 118, and fewer resident pages in every process.
    .target(name: "GoAllocCoreEmbedded", dependencies: ["CGoAllocShim"],
            swiftSettings: embedded + coreSettings + [.unsafeFlags(["-Xfrontend", "-function-sections"])]),
    .target(
      name: "libgoalloc",
      dependencies: ["GoAllocCoreEmbedded", "CGoAllocShim", "CGoAllocABI"],
      exclude: ["exports.map"],
      swiftSettings: embedded + coreSettings + [.unsafeFlags(["-Xfrontend", "-function-sections"])],
      linkerSettings: [
        .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/libgoalloc/exports.map"]),
      ]
    ),
    // The public Swift API (`import GoAlloc`): allocate, deallocate, MemStats.
    .target(name: "GoAlloc", dependencies: ["GoAllocCore"]),
    // Tooling over the heap: allocation traces, the heap map model and its SVG renderer.
    .target(name: "GoAllocTools", dependencies: ["GoAllocCore"]),
    .executableTarget(
      name: "goalloc-cli",
      dependencies: ["GoAlloc", "GoAllocTools", "SizeClassGenerator",
                     .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    .testTarget(name: "GoAllocCoreTests", dependencies: ["GoAllocCore", "CGoAllocShim"]),
    .testTarget(name: "GoAllocTests",
                dependencies: ["GoAlloc", "GoAllocTools", "SizeClassGenerator", "GoAllocCore", "CGoAllocShim"],
                resources: [.copy("Fixtures")]),
    .testTarget(name: "PreloadTests", dependencies: ["GoAlloc"], resources: [.copy("Fixtures")]),
  ]
)
