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
    if let exe = readLink("/proc/self/exe") { dirs.append(directoryName(exe)) }
    if let cwd = currentDirectory() {
      dirs.append(join(cwd, ".build/release"))
      dirs.append(join(cwd, ".build/debug"))
    }
    return dirs
  }

  /// The first libgoalloc.so found; prints one line to stderr and fails if there is none.
  static func libraryPath() throws -> String {
    let dirs = searchDirectories()
    for dir in dirs {
      let candidate = join(dir, libraryName)
      if access(candidate, R_OK) == 0 { return candidate }
    }
    printError("goalloc: \(libraryName) not found in \(dirs.joined(separator: ", ")); build it with `swift build --product goalloc`")
    throw ExitCode.failure
  }

  static func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  static func currentDirectory() -> String? {
    guard let cwd = getcwd(nil, 0) else { return nil }
    defer { free(cwd) }
    return String(cString: cwd)
  }

  static func directoryName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }

  static func join(_ dir: String, _ name: String) -> String {
    dir.hasSuffix("/") ? dir + name : dir + "/" + name
  }
}
