// Sources/GoAllocCoreEmbedded is a mirror of symlinks to Sources/GoAllocCore/*.swift (the
// Embedded build of libgoalloc.so compiles it): every core file must be linked there, and
// nothing else may be. Scripts/check-embedded-mirror.sh (run by .ci/run) checks the same.
import Foundation
import Testing

@Suite struct EmbeddedMirrorTests {
  /// The package root: this file is Tests/GoAllocCoreTests/EmbeddedMirrorTests.swift.
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  @Test func mirrorLinksEveryCoreFileAndNothingElse() throws {
    let fm = FileManager.default
    let core = Self.root.appendingPathComponent("Sources/GoAllocCore")
    let mirror = Self.root.appendingPathComponent("Sources/GoAllocCoreEmbedded")
    let coreEntries = try fm.contentsOfDirectory(atPath: core.path)
    let coreFiles = Set(coreEntries.filter { $0.hasSuffix(".swift") })
    #expect(!coreFiles.isEmpty, "no Swift files in \(core.path)")
    // The mirror is flat: a core file in a subfolder could not be linked under the same name.
    let nested = ((try? fm.subpathsOfDirectory(atPath: core.path)) ?? [])
      .filter { $0.hasSuffix(".swift") && $0.contains("/") }
    #expect(nested.isEmpty, "core files in subfolders, not mirrored: \(nested)")

    for name in coreFiles.sorted() {
      let link = mirror.appendingPathComponent(name).path
      let target = try? fm.destinationOfSymbolicLink(atPath: link)
      #expect(target == "../GoAllocCore/\(name)",
              "\(link) must be a symlink to ../GoAllocCore/\(name) (is: \(target ?? "missing or not a link"))")
    }
    for name in try fm.contentsOfDirectory(atPath: mirror.path).sorted() {
      let link = mirror.appendingPathComponent(name).path
      guard let target = try? fm.destinationOfSymbolicLink(atPath: link) else {
        Issue.record("\(link) is not a symlink into Sources/GoAllocCore")
        continue
      }
      #expect(fm.fileExists(atPath: link), "\(link) is dangling (-> \(target))")
      #expect(coreFiles.contains(name), "\(link) has no counterpart in Sources/GoAllocCore")
    }
  }
}
