// `goalloc preload-path`: where the built libgoalloc.so is.
//
// Search order: the folder of the running executable (SwiftPM builds libgoalloc.so next to
// goalloc-cli), then .build/release and .build/debug under the current directory.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct PreloadPathCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "preload-path",
    abstract: "Print the absolute path of the built libgoalloc.so.",
    discussion: """
      Looks next to this executable first, then in .build/release and .build/debug under the \
      current directory. Fails if none holds \(Preload.libraryName); build it with \
      `swift build --product goalloc` (add -c release for the optimised library).
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
    if let exe = Files.readLink("/proc/self/exe") { dirs.append(Files.directoryName(exe)) }
    if let cwd = Files.currentDirectory() {
      dirs.append(Files.join(cwd, ".build/release"))
      dirs.append(Files.join(cwd, ".build/debug"))
    }
    return dirs
  }

  /// The first libgoalloc.so found; prints one line to stderr and fails if there is none.
  static func libraryPath() throws -> String {
    let dirs = searchDirectories()
    for dir in dirs {
      let candidate = Files.join(dir, libraryName)
      if access(candidate, R_OK) == 0 { return candidate }
    }
    printError("goalloc: \(libraryName) not found in \(dirs.joined(separator: ", ")); build it with `swift build --product goalloc`")
    throw ExitCode.failure
  }
}
