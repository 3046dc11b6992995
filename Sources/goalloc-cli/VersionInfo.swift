// `goalloc --version`: the command's version and which libgoalloc.so it would preload, named by
// the library's GNU build ID (the linker's hash of the library's contents, as `readelf -n` or
// `file` show it), so two installs can be told apart.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum GoallocVersion {
  /// The version of GoAlloc (the command, the library and goalloc.pc; Scripts/install.sh reads it
  /// from `goalloc --version`).
  static let number = "0.1.0"

  /// "goalloc 0.1.0" and a line about the library.
  static func report() -> String {
    var text = "goalloc \(number)\n"
    guard let library = Preload.find() else {
      return text + "library: \(Preload.libraryName) not found (\(Preload.searchDescription()))"
    }
    text += "library: \(library.path)"
    if library.fromEnvironment { text += " (from GOALLOC_LIB)" }
    text += ", build-id " + (buildID(library.path) ?? "unknown")
    return text
  }

  /// The hex GNU build ID of an ELF file, or nil.
  static func buildID(_ path: String) -> String? {
    guard let bytes = Files.readBytes(path, limit: 1 << 20), bytes.count >= 64,
          bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46, bytes[4] == 2 else { return nil }
    func u16(_ o: Int) -> Int { o + 2 <= bytes.count ? Int(bytes[o]) | Int(bytes[o + 1]) << 8 : 0 }
    func u32(_ o: Int) -> Int { o + 4 <= bytes.count ? u16(o) | u16(o + 2) << 16 : 0 }
    func u64(_ o: Int) -> Int { o + 8 <= bytes.count ? u32(o) | u32(o + 4) << 32 : 0 }
    let phoff = u64(0x20), phentsize = u16(0x36), phnum = u16(0x38)
    for i in 0..<phnum {
      let ph = phoff + i * phentsize
      guard ph + 56 <= bytes.count, u32(ph) == 4 else { continue }  // PT_NOTE
      var at = u64(ph + 8)
      let end = min(bytes.count, at + u64(ph + 32))
      while at + 12 <= end {
        let namesz = u32(at), descsz = u32(at + 4), type = u32(at + 8)
        let name = at + 12, desc = name + (namesz + 3) & ~3
        if type == 3 && namesz == 4 && desc + descsz <= end && Array(bytes[name..<name + 3]) == [0x47, 0x4E, 0x55] {
          let hex = Array("0123456789abcdef")
          return String(bytes[desc..<desc + descsz].flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] })
        }
        at = desc + (descsz + 3) & ~3
      }
    }
    return nil
  }
}
