// FixAlloc: a free-list allocator of objects of one fixed size (Go's mfixalloc.go), for the
// heap's own metadata: mspans, mcaches, span bitmaps, tiny-block counts. See Malloc.swift for an
// overview.
//
// Objects come from chunks of PersistentAlloc (8 objects at first, doubling to 16 KiB, so the
// allocators of a small process share pages); a freed object goes on a LIFO linked through its
// word 0 and comes back zeroed. Callers hold the mheap lock.
// Invariants: inuse == bytes handed out and not freed; every listed object was handed out.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

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
