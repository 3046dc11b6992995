// Symbolizing the return addresses of an allocation trace: the trace's `# map` lines give each
// address's module and file offset; the module's ELF program headers turn the offset into the
// address addr2line expects; `addr2line -f -C -e MODULE ADDR...` (one run per module) gives the
// function and file:line. Without addr2line, or for code without symbols, an address stays
// "module+0xoffset".

import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum Symbolizer {
  struct Symbol {
    var module: String      // file name of the module
    var offset: UInt        // file offset in it
    var function: String?
    var location: String?   // file:line (file name only)

    var fallback: String { "\(module)+0x\(String(offset, radix: 16))" }
    /// "function (file.c:12)", or "module+0xoffset" when nothing better is known.
    var text: String {
      guard let function else { return fallback }
      return location.map { "\(function) (\($0))" } ?? "\(function) [\(module)]"
    }
  }

  /// Symbols for `pcs` (unknown pcs are left out).
  static func symbolize(_ pcs: [UInt], mappings: [TraceMapping], useAddr2line: Bool = true) -> [UInt: Symbol] {
    var result: [UInt: Symbol] = [:]
    var byModule: [String: [(pc: UInt, offset: UInt)]] = [:]
    for pc in Set(pcs) where pc != 0 {
      guard let m = mappings.first(where: { $0.contains(pc) }) else { continue }
      let off = m.fileOffset(pc)
      result[pc] = Symbol(module: m.name, offset: off)
      byModule[m.path, default: []].append((pc, off))
    }
    guard useAddr2line, let tool = Which.find("addr2line") else { return result }
    for (path, entries) in byModule {
      guard access(path, R_OK) == 0 else { continue }
      let loads = ELF.loadSegments(path)
      // A return address points after the call: look up the byte before it.
      let addrs = entries.map { e -> String in
        let off = e.offset > 0 ? e.offset - 1 : 0
        return "0x" + String(ELF.virtualAddress(ofFileOffset: off, loads), radix: 16)
      }
      var i = 0
      while i < entries.count {  // batches keep argument lists short
        let n = min(500, entries.count - i)
        guard let out = ChildProcess.capture([tool, "-f", "-C", "-e", path] + Array(addrs[i..<(i + n)])) else { break }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for k in 0..<n where 2 * k + 1 < lines.count {
          let pc = entries[i + k].pc
          let fn = lines[2 * k], loc = lines[2 * k + 1]
          if fn != "??" && !fn.isEmpty { result[pc]?.function = fn }
          if !loc.hasPrefix("??") {
            var l = loc
            if let d = l.firstRange(of: " (discriminator") { l = String(l[..<d.lowerBound]) }
            let file = Files.baseName(l)
            if !file.hasSuffix(":0") && !file.hasSuffix(":?") { result[pc]?.location = file }
          }
        }
        i += n
      }
    }
    return result
  }
}

/// ELF64 little-endian program headers: enough to map a file offset to a virtual address.
enum ELF {
  struct Load { var offset: UInt64; var vaddr: UInt64; var filesz: UInt64 }

  static func loadSegments(_ path: String) -> [Load] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var h = [UInt8](repeating: 0, count: 64)
    guard pread(fd, &h, 64, 0) == 64, h[0] == 0x7F, h[1] == 0x45, h[2] == 0x4C, h[3] == 0x46,
          h[4] == 2 /* 64-bit */, h[5] == 1 /* little endian */ else { return [] }
    func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
    let phoff = u64(h, 32), phentsize = u16(h, 54), phnum = u16(h, 56)
    guard phentsize >= 56, phnum > 0, phnum < 4096 else { return [] }
    var table = [UInt8](repeating: 0, count: phentsize * phnum)
    guard pread(fd, &table, table.count, off_t(phoff)) == table.count else { return [] }
    var loads: [Load] = []
    for i in 0..<phnum {
      let o = i * phentsize
      let type = u16(table, o) | u16(table, o + 2) << 16
      if type == 1 { loads.append(Load(offset: u64(table, o + 8), vaddr: u64(table, o + 16), filesz: u64(table, o + 32))) }
    }
    return loads
  }

  static func virtualAddress(ofFileOffset off: UInt, _ loads: [Load]) -> UInt {
    let o = UInt64(off)
    for l in loads where o >= l.offset && o < l.offset + l.filesz {
      return UInt(o - l.offset + l.vaddr)
    }
    return off
  }
}
