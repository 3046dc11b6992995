// A module's function symbols from its ELF file (.symtab, else .dynsym), with sizes, so that an
// address gets a name only when it lies inside a symbol: a stripped module's internal functions
// are in no symbol, and are then called "stripped" instead of being given the name of the
// nearest exported function before them (what a lookup without sizes guesses). Also whether the
// module (or its separate debug file under /usr/lib/debug/.build-id) has DWARF debug info.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct ELFSymbols {
  struct Function { var start: UInt64; var end: UInt64; var name: String }
  var functions: [Function] = []   // sorted by start
  var hasSymtab = false            // not stripped: every function is in .symtab
  var debugFile: String?           // the file with .debug_info (the module or its debug file)

  /// The function containing `vaddr`, if any.
  func function(at vaddr: UInt64) -> String? {
    var lo = 0, hi = functions.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if functions[mid].start <= vaddr { lo = mid + 1 } else { hi = mid }
    }
    var i = lo - 1
    while i >= 0 && i >= lo - 4 {  // symbols may nest or share a start: look at a few
      if vaddr < functions[i].end { return functions[i].name }
      i -= 1
    }
    return nil
  }

  init(path: String) {
    guard let file = ELFFile(path: path) else { return }
    let symtab = file.section(named: ".symtab")
    hasSymtab = symtab != nil
    for table in [symtab, file.section(named: ".dynsym")].compactMap({ $0 }) {
      if !functions.isEmpty { break }
      functions = file.functions(in: table)
    }
    functions.sort { $0.start < $1.start }
    if file.section(named: ".debug_info") != nil {
      debugFile = path
    } else if let id = file.buildID(), id.count > 2 {
      let hex = id.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
      let candidate = "/usr/lib/debug/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug"
      if access(candidate, R_OK) == 0 {
        debugFile = candidate
        if !hasSymtab, let dbg = ELFFile(path: candidate), let t = dbg.section(named: ".symtab") {
          functions = dbg.functions(in: t).sorted { $0.start < $1.start }
          hasSymtab = true
        }
      }
    }
  }
}

/// ELF64 little-endian, read whole: sections, symbols, the build-id note.
struct ELFFile {
  struct Section { var name: String; var type: UInt32; var offset: Int; var size: Int; var link: Int; var entsize: Int }
  let bytes: [UInt8]
  var sections: [Section] = []

  init?(path: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, st.st_size > 64, st.st_size < 1 << 31 else { return nil }
    var b = [UInt8](repeating: 0, count: Int(st.st_size))
    var got = 0
    while got < b.count {
      let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(got)) }
      if n <= 0 { return nil }
      got += n
    }
    bytes = b
    guard b[0] == 0x7F, b[1] == 0x45, b[2] == 0x4C, b[3] == 0x46, b[4] == 2, b[5] == 1 else { return nil }
    let shoff = Int(u64(40)), shentsize = Int(u16(58)), shnum = Int(u16(60)), shstrndx = Int(u16(62))
    guard shoff > 0, shentsize >= 64, shnum > 0, shoff + shnum * shentsize <= b.count, shstrndx < shnum else { return nil }
    var raw: [(UInt32, UInt32, Int, Int, Int, Int)] = []
    for i in 0..<shnum {
      let o = shoff + i * shentsize
      raw.append((u32(o), u32(o + 4), Int(u64(o + 24)), Int(u64(o + 32)), Int(u32(o + 40)), Int(u64(o + 56))))
    }
    let names = raw[shstrndx]
    for r in raw {
      sections.append(Section(name: cString(names.2 + Int(r.0)), type: r.1, offset: r.2, size: r.3, link: r.4, entsize: r.5))
    }
  }

  func u16(_ o: Int) -> UInt16 { o + 2 <= bytes.count ? UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 : 0 }
  func u32(_ o: Int) -> UInt32 { o + 4 <= bytes.count ? (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[o + $1]) << (8 * UInt32($1)) } : 0 }
  func u64(_ o: Int) -> UInt64 { o + 8 <= bytes.count ? (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[o + $1]) << (8 * UInt64($1)) } : 0 }
  func cString(_ o: Int) -> String {
    guard o >= 0, o < bytes.count else { return "" }
    var e = o
    while e < bytes.count && bytes[e] != 0 { e += 1 }
    return String(decoding: bytes[o..<e], as: UTF8.self)
  }

  func section(named name: String) -> Section? {
    sections.first { $0.name == name && $0.type != 8 /* SHT_NOBITS */ && $0.size > 0 }
  }

  /// Defined STT_FUNC (and STT_GNU_IFUNC) symbols with a size.
  func functions(in table: Section) -> [ELFSymbols.Function] {
    guard table.entsize >= 24, table.link < sections.count else { return [] }
    let strings = sections[table.link]
    var out: [ELFSymbols.Function] = []
    var o = table.offset
    while o + 24 <= table.offset + table.size && o + 24 <= bytes.count {
      let info = bytes[o + 4], shndx = u16(o + 6), value = u64(o + 8), size = u64(o + 16)
      let type = info & 0xF
      if (type == 2 || type == 10), shndx != 0, size > 0 {
        out.append(ELFSymbols.Function(start: value, end: value + size, name: cString(strings.offset + Int(u32(o)))))
      }
      o += table.entsize
    }
    return out
  }

  /// The NT_GNU_BUILD_ID note's bytes.
  func buildID() -> [UInt8]? {
    for s in sections where s.type == 7 /* SHT_NOTE */ {
      var o = s.offset
      while o + 12 <= s.offset + s.size {
        let namesz = Int(u32(o)), descsz = Int(u32(o + 4)), type = u32(o + 8)
        let desc = o + 12 + ((namesz + 3) & ~3)
        if type == 3 && namesz == 4 && desc + descsz <= bytes.count { return Array(bytes[desc..<(desc + descsz)]) }
        o = desc + ((descsz + 3) & ~3)
      }
    }
    return nil
  }
}
