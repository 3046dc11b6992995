// pprof's profile format (profile.proto, as `go tool pprof` reads it), written by hand: the
// protobuf wire format (varints, length-delimited fields) and a gzip container. The gzip
// member holds the protobuf in stored (uncompressed) deflate blocks with its CRC-32, which
// every gzip reader accepts, so no compression library is needed.
//
// A heap profile gets two sample types, inuse_objects/count and inuse_space/bytes (the
// default), one sample per call stack, a location per return address (with its function once
// symbolized: has_functions is then set, so pprof does not symbolize again), a mapping per
// module, and the period: the sampling rate in bytes.

public enum Pprof {
  /// A frame's name for the function table: `function` (nil: the location stays an address),
  /// and the source file when known.
  public struct Frame: Sendable {
    public var function: String?
    public var file: String
    public var line: Int64
    public init(function: String?, file: String = "", line: Int64 = 0) {
      self.function = function; self.file = file; self.line = line
    }
  }

  /// The profile.proto bytes (not compressed) for `profile`; `frame(pc)` names each address.
  public static func heapProfile(_ profile: HeapProfileData, frame: (UInt) -> Frame) -> [UInt8] {
    var strings: [String] = [""]
    var stringIndex: [String: Int64] = ["": 0]
    func str(_ s: String) -> Int64 {
      if let i = stringIndex[s] { return i }
      strings.append(s)
      stringIndex[s] = Int64(strings.count - 1)
      return Int64(strings.count - 1)
    }
    var out = ProtoWriter()
    // sample_type = 1
    for (t, u) in [("inuse_objects", "count"), ("inuse_space", "bytes")] {
      var v = ProtoWriter(); v.int(1, str(t)); v.int(2, str(u)); out.message(1, v)
    }
    var locationIDs: [UInt: UInt64] = [:]
    var functionIDs: [String: UInt64] = [:]
    var locations = ProtoWriter(), functions = ProtoWriter()
    var mappingIDs: [Int: UInt64] = [:]
    for (i, _) in profile.mappings.enumerated() { mappingIDs[i] = UInt64(i + 1) }
    var allNamed = true
    for s in profile.stacks() {
      var sample = ProtoWriter()
      var ids: [UInt64] = []
      for pc in s.pcs {
        if let id = locationIDs[pc] { ids.append(id); continue }
        let id = UInt64(locationIDs.count + 1)
        locationIDs[pc] = id
        ids.append(id)
        var loc = ProtoWriter()
        loc.uint(1, id)
        if let m = profile.mappings.firstIndex(where: { $0.contains(pc) }) { loc.uint(2, UInt64(m + 1)) }
        loc.uint(3, UInt64(pc))
        let f = frame(pc)
        if let name = f.function {
          let key = name + "\u{0}" + f.file
          var fid = functionIDs[key]
          if fid == nil {
            fid = UInt64(functionIDs.count + 1)
            functionIDs[key] = fid
            var fn = ProtoWriter()
            fn.uint(1, fid!); fn.int(2, str(name)); fn.int(3, str(name)); fn.int(4, str(f.file))
            functions.message(5, fn)
          }
          var line = ProtoWriter(); line.uint(1, fid!); line.int(2, f.line)
          loc.message(4, line)
        } else {
          allNamed = false
        }
        locations.message(4, loc)
      }
      sample.packed(1, ids)
      sample.packed(2, [UInt64(bitPattern: s.objects), UInt64(bitPattern: s.bytes)])
      out.message(2, sample)
    }
    for (i, m) in profile.mappings.enumerated() {
      var mp = ProtoWriter()
      mp.uint(1, UInt64(i + 1)); mp.uint(2, UInt64(m.start)); mp.uint(3, UInt64(m.end)); mp.uint(4, UInt64(m.offset))
      mp.int(5, str(m.path))
      mp.bool(7, allNamed)
      out.message(3, mp)
    }
    out.bytes += locations.bytes
    out.bytes += functions.bytes
    let periodType = (str("space"), str("bytes")), defaultType = str("inuse_space")
    for s in strings { out.string(6, s) }
    var pt = ProtoWriter(); pt.int(1, periodType.0); pt.int(2, periodType.1); out.message(11, pt)
    out.int(12, Int64(profile.rate))
    out.int(14, defaultType)
    return out.bytes
  }

  /// `data` as a gzip member (stored deflate blocks).
  public static func gzip(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255]  // magic, deflate, no flags, no mtime, unknown OS
    var i = 0
    repeat {
      let n = min(65_535, data.count - i)
      out.append(i + n == data.count ? 1 : 0)  // BFINAL, BTYPE 00 (stored)
      out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
      out += data[i..<(i + n)]
      i += n
    } while i < data.count
    let crc = crc32(data), size = UInt32(truncatingIfNeeded: data.count)
    for v in [crc, size] { for k in 0..<4 { out.append(UInt8((v >> (8 * UInt32(k))) & 0xFF)) } }
    return out
  }

  static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
  }

  public static func crc32(_ data: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
  }
}

/// Protobuf wire format: the few field kinds profile.proto needs.
struct ProtoWriter {
  var bytes: [UInt8] = []

  mutating func varint(_ v: UInt64) {
    var v = v
    while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
    bytes.append(UInt8(v))
  }
  mutating func key(_ field: Int, _ wire: UInt64) { varint(UInt64(field) << 3 | wire) }
  mutating func uint(_ field: Int, _ v: UInt64) { if v != 0 { key(field, 0); varint(v) } }
  mutating func int(_ field: Int, _ v: Int64) { if v != 0 { key(field, 0); varint(UInt64(bitPattern: v)) } }
  mutating func bool(_ field: Int, _ v: Bool) { if v { key(field, 0); varint(1) } }
  mutating func lengthDelimited(_ field: Int, _ b: [UInt8]) { key(field, 2); varint(UInt64(b.count)); bytes += b }
  mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Array(s.utf8)) }
  mutating func message(_ field: Int, _ m: ProtoWriter) { lengthDelimited(field, m.bytes) }
  mutating func packed(_ field: Int, _ values: [UInt64]) {
    var p = ProtoWriter()
    for v in values { p.varint(v) }
    lengthDelimited(field, p.bytes)
  }
}
