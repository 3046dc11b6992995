// `goalloc preload-path`: where libgoalloc.so is.
//
// Search order: $GOALLOC_LIB when set; the folder of the running executable (SwiftPM builds
// libgoalloc.so next to goalloc-cli); ../lib beside it (an installed `goalloc`:
// PREFIX/bin/goalloc and PREFIX/lib/libgoalloc.so); then .build/release and .build/debug under the
// current directory.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct PreloadPathCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "preload-path",
    abstract: "Print the absolute path of libgoalloc.so.",
    discussion: """
      Uses $GOALLOC_LIB when it is set. Otherwise looks next to this executable, then in ../lib \
      beside it (where Scripts/install.sh puts the library), then in .build/release and \
      .build/debug under the current directory. Fails if none holds \(Preload.libraryName); build \
      it with `swift build --product goalloc` (add -c release for the optimised library).
      """
  )

  func run() throws {
    print(try Preload.libraryPath())
  }
}

enum Preload {
  static let libraryName = "libgoalloc.so"

  /// The folders searched, in order (absolute paths).
  static func searchDirectories() -> [String] {
    var dirs: [String] = []
    if let exe = Files.readLink("/proc/self/exe") {
      let bin = Files.directoryName(exe)
      dirs.append(bin)
      dirs.append(Files.join(Files.directoryName(bin), "lib"))
    }
    if let cwd = Files.currentDirectory() {
      dirs.append(Files.join(cwd, ".build/release"))
      dirs.append(Files.join(cwd, ".build/debug"))
    }
    return dirs
  }

  /// The library to use: GOALLOC_LIB (when set, even if it is missing), else the first found.
  static func find() -> (path: String, fromEnvironment: Bool)? {
    if let lib = RunCommand.environment("GOALLOC_LIB") {
      return access(lib, R_OK) == 0 ? (Files.absolute(lib), true) : nil
    }
    for dir in searchDirectories() {
      let candidate = Files.join(dir, libraryName)
      if access(candidate, R_OK) == 0 { return (candidate, false) }
    }
    return nil
  }

  /// Where `find` looked, for messages.
  static func searchDescription() -> String {
    if let lib = RunCommand.environment("GOALLOC_LIB") { return "GOALLOC_LIB=\(lib) cannot be read" }
    return "looked in " + searchDirectories().joined(separator: ", ")
  }

  /// The library found; prints one line to stderr and fails if there is none.
  static func libraryPath() throws -> String {
    if let found = find() { return found.path }
    if RunCommand.environment("GOALLOC_LIB") != nil {
      printError("goalloc: \(searchDescription())")
    } else {
      printError("goalloc: \(libraryName) not found (\(searchDescription())); build it with `swift build --product goalloc`")
    }
    throw ExitCode.failure
  }
}
