// OS: the allocator's only contact with the kernel, and the persistent metadata allocator.
//
// `sysMap` hands out zeroed, demand-paged memory (MAP_NORESERVE): address space is cheap, only
// touched pages cost RSS. `PersistentAlloc` bump-allocates immortal metadata (arena metadata,
// chunk bitmaps, FixAlloc chunks) from 256 KiB mappings, as Go's persistentalloc does; it is
// never freed. Callers hold the mheap lock. Nothing here calls malloc.
import CGoAllocShim

@inline(__always) func roundUp(_ n: Int, _ align: Int) -> Int { (n + align - 1) & ~(align - 1) }
@inline(__always) func roundUp(_ n: UInt, _ align: UInt) -> UInt { (n &+ align &- 1) & ~(align &- 1) }

/// Zeroed memory from the OS, or nil.
func sysMap(_ bytes: Int) -> UnsafeMutableRawPointer? { goalloc_sys_map(bytes) }

/// Writes "goalloc: <op>(): <what>: 0x<addr>" and aborts.
func fatal(_ op: StaticString, _ what: StaticString, _ addr: UInt = 0) -> Never {
  report(op, what, addr)
  goalloc_abort()
}
func report(_ op: StaticString, _ what: StaticString, _ addr: UInt) {
  op.withUTF8Buffer { o in
    what.withUTF8Buffer { w in
      goalloc_report(UnsafeRawPointer(o.baseAddress!).assumingMemoryBound(to: CChar.self),
                     UnsafeRawPointer(w.baseAddress!).assumingMemoryBound(to: CChar.self), addr)
    }
  }
}
/// Writes a static string to a file descriptor.
func writeStatic(_ fd: Int32, _ s: StaticString) {
  s.withUTF8Buffer { b in
    goalloc_write_len(fd, UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self), b.count)
  }
}

/// Bump allocator for metadata that lives forever. Zero-initialised (a zeroed struct is empty).
struct PersistentAlloc {
  var base: UInt = 0   // next free byte in the current mapping
  var end: UInt = 0
  var sys: Int = 0     // bytes mapped for metadata, all time

  static let chunkBytes = 256 << 10

  /// Zeroed, `align`-aligned memory (align <= 4096), or nil when the OS refuses.
  mutating func alloc(_ size: Int, align: Int = 64) -> UnsafeMutableRawPointer? {
    if size >= 64 << 10 {
      let n = roundUp(size, 4096)
      guard let p = sysMap(n) else { return nil }
      sys += n
      return p
    }
    var p = roundUp(base, UInt(align))
    if p + UInt(size) > end {
      guard let m = sysMap(PersistentAlloc.chunkBytes) else { return nil }
      sys += PersistentAlloc.chunkBytes
      base = UInt(bitPattern: m)
      end = base + UInt(PersistentAlloc.chunkBytes)
      p = base
    }
    base = p + UInt(size)
    return UnsafeMutableRawPointer(bitPattern: p)
  }
}

/// A free-list allocator of one fixed size over PersistentAlloc (Go's fixalloc): mspans, mcaches,
/// span bitmaps. Objects come back zeroed. Callers hold the mheap lock.
struct FixAlloc {
  var size: Int = 0
  var list: UnsafeMutableRawPointer? = nil  // LIFO of freed objects, linked through word 0
  var chunk: UInt = 0
  var nchunk: Int = 0
  var inuse: Int = 0   // bytes handed out and not freed
  var sys: Int = 0     // bytes taken from PersistentAlloc
  var nextChunk = 0    // bytes of the next chunk: 8 objects at first, doubling to chunkBytes

  static let chunkBytes = 16 << 10

  /// Small first chunks let the allocators of a small process share pages (RSS).
  init(size: Int) {
    self.size = roundUp(size, 16)
    nextChunk = max(self.size, min(FixAlloc.chunkBytes, 8 * self.size))
  }

  mutating func alloc(_ persistent: inout PersistentAlloc) -> UnsafeMutableRawPointer? {
    if let p = list {
      list = p.load(as: UnsafeMutableRawPointer?.self)
      goalloc_memset(p, 0, size)
      inuse += size
      return p
    }
    if nchunk < size {
      let n = nextChunk
      guard let c = persistent.alloc(n, align: 64) else { return nil }
      chunk = UInt(bitPattern: c)
      nchunk = n
      sys += n
      if n < FixAlloc.chunkBytes { nextChunk = max(size, min(FixAlloc.chunkBytes, 2 * n)) }
    }
    let p = UnsafeMutableRawPointer(bitPattern: chunk)!
    chunk += UInt(size)
    nchunk -= size
    inuse += size
    return p  // fresh persistent memory is already zero
  }

  mutating func free(_ p: UnsafeMutableRawPointer) {
    p.storeBytes(of: list, as: UnsafeMutableRawPointer?.self)
    list = p
    inuse -= size
  }
}
