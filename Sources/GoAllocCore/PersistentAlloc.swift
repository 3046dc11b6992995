// PersistentAlloc: bump allocation of metadata that lives forever (Go's persistentalloc).
// See Malloc.swift for an overview.
//
// Arena metadata, chunk bitmaps and FixAlloc chunks are carved from 256 KiB mappings (a request
// of 64 KiB or more gets a mapping of its own); nothing is ever freed. Callers hold the mheap
// lock. Invariants: base <= end; [base, end) is zeroed, never handed out memory.
import CGoAllocShim

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
