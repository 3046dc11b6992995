// Symbolizing the return addresses of an allocation trace or a heap profile: the `# map` lines
// give each address's module and file offset; the module's ELF program headers turn the offset
// into its virtual address. A module with DWARF debug info (in itself, or in its separate debug
// file under /usr/lib/debug/.build-id) goes to `addr2line -f -C -e FILE ADDR...` (one run per
// module) for the function and file:line; otherwise the function is the .symtab or .dynsym
// symbol that contains the address (ELFSymbols.swift). An address in no symbol of a stripped
// module is "module+0xoffset [stripped]": no name is guessed.

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
    var stripped = false    // no symbol covers it and the module has no .symtab

    var fallback: String { "\(module)+0x\(String(offset, radix: 16))" + (stripped ? " [stripped]" : "") }
    /// "function (file.c:12)", "function [module]", or "module+0xoffset" when nothing better is
    /// known ("... [stripped]" when the module has no symbols for it).
    var text: String {
      guard let function else { return fallback }
      return location.map { "\(function) (\($0))" } ?? "\(function) [\(module)]"
    }
  }

  /// Symbols for `pcs` (unknown pcs are left out).
  /// `useSymbols` false: module+offset only.
  static func symbolize(_ pcs: [UInt], mappings: [TraceMapping], useAddr2line: Bool = true,
                        useSymbols: Bool = true) -> [UInt: Symbol] {
    var result: [UInt: Symbol] = [:]
    var byModule: [String: [(pc: UInt, offset: UInt)]] = [:]
    for pc in Set(pcs) where pc != 0 {
      guard let m = mappings.first(where: { $0.contains(pc) }) else { continue }
      let off = m.fileOffset(pc)
      result[pc] = Symbol(module: m.name, offset: off)
      byModule[m.path, default: []].append((pc, off))
    }
    let addr2line = useAddr2line ? Which.find("addr2line") : nil
    for (path, entries) in byModule where useSymbols {
      guard access(path, R_OK) == 0 else { continue }
      let loads = ELF.loadSegments(path)
      // A return address points after the call: look up the byte before it.
      let vaddrs = entries.map { e -> UInt in ELF.virtualAddress(ofFileOffset: e.offset > 0 ? e.offset - 1 : 0, loads) }
      let symbols = ELFSymbols(path: path)
      for (k, e) in entries.enumerated() {
        if let name = symbols.function(at: UInt64(vaddrs[k])) {
          result[e.pc]?.function = name
        } else {
          result[e.pc]?.stripped = !symbols.hasSymtab
        }
      }
      let names = Demangler.demangle(entries.compactMap { result[$0.pc]?.function })
      for e in entries { if let f = result[e.pc]?.function { result[e.pc]?.function = names[f] ?? f } }
      guard let tool = addr2line, let debugFile = symbols.debugFile else { continue }
      let addrs = vaddrs.map { "0x" + String($0, radix: 16) }
      var i = 0
      while i < entries.count {  // batches keep argument lists short
        let n = min(500, entries.count - i)
        guard let out = ChildProcess.capture([tool, "-f", "-C", "-e", debugFile] + Array(addrs[i..<(i + n)])) else { break }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for k in 0..<n where 2 * k + 1 < lines.count {
          let pc = entries[i + k].pc
          let fn = lines[2 * k], loc = lines[2 * k + 1]
          if fn != "??" && !fn.isEmpty { result[pc]?.function = fn; result[pc]?.stripped = false }
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

/// C++ and Swift symbol names made readable by c++filt and swift-demangle, when installed.
enum Demangler {
  static func demangle(_ names: [String]) -> [String: String] {
    var out: [String: String] = [:]
    let cxx = Array(Set(names.filter { $0.hasPrefix("_Z") })).sorted()
    let swift = Array(Set(names.filter { $0.hasPrefix("$s") || $0.hasPrefix("$e") })).sorted()
    for (list, tool, flags) in [(cxx, "c++filt", [String]()), (swift, "swift-demangle", ["--simplified", "--compact"])] {
      guard !list.isEmpty, let path = Which.find(tool) else { continue }
      var i = 0
      while i < list.count {
        let batch = Array(list[i..<min(list.count, i + 300)])
        if let text = ChildProcess.capture([path] + flags + batch) {
          let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
          for (k, n) in batch.enumerated() where k < lines.count && !lines[k].isEmpty { out[n] = lines[k] }
        }
        i += batch.count
      }
    }
    return out
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
