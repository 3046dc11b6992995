// Pool<T>: Go's sync.Pool for Swift, over GoAllocCore's pools (Pool.swift there; the C API is
// goalloc_pool_* in include/goalloc.h, with the same rules).
import GoAllocCore

/// Memory for values of type `T`, kept for reuse across threads (Go's `sync.Pool`).
///
/// `get()` returns memory of a value that was `put` back (any thread's, with the value it had),
/// or memory initialized by `make` when the pool is empty (nil without `make`). `put(_:)` gives
/// it back: the caller must not use it afterwards. Each thread has a private slot (its own,
/// reached with plain loads and stores) and a chain that others steal from before they make
/// new values.
///
/// The pool does not pin memory (Go 1.13's victim rule): a rotation moves everything pooled to
/// a victim cache that `get` still reads, and frees what the victim cache held. Rotations come
/// after every collection of the GC mode (`GC.collect()` or paced), every second of the
/// scavenger's clock without the GC mode, and `GoAlloc.releaseFreeMemory()` (or C's
/// malloc_trim) frees everything pooled. Values are freed without being deinitialized, hence
/// `BitwiseCopyable`: a pooled value must own nothing.
///
/// The memory is GoAlloc's malloc memory (16-byte aligned from 16 B up), so `T`'s alignment
/// may be at most 16. Deinitializing the pool frees what it holds; memory handed out stays the
/// caller's (`GoAlloc.deallocate` it, or put it back into another pool of `T`).
public final class Pool<T: BitwiseCopyable>: @unchecked Sendable {
  let raw: UnsafeMutableRawPointer
  let maker: PoolMaker<T>?

  /// A pool of `T`; `make` makes a value when the pool is empty (nil: `get` returns nil then).
  public init(make: (@Sendable () -> T)? = nil) {
    precondition(MemoryLayout<T>.alignment <= 16, "Pool<T>: T's alignment must be at most 16")
    let maker = make.map(PoolMaker<T>.init)
    self.maker = maker
    // The core calls a C function with the box as its argument (unretained: the pool keeps it).
    let constructor: PoolConstructor? = maker == nil ? nil : { obj, arg in
      Unmanaged<PoolMakerBase>.fromOpaque(arg!).takeUnretainedValue().construct(obj)
    }
    let arg = maker.map { Unmanaged<PoolMakerBase>.passUnretained($0).toOpaque() }
    guard let p = poolCreate(size: max(MemoryLayout<T>.stride, 1), constructor: constructor, arg: arg) else {
      fatalError("Pool<T>: out of memory for the pool's metadata")
    }
    raw = p
  }

  deinit { poolDestroy(raw) }

  /// Memory of a pooled value, or of a new one from `make`; nil when the pool is empty and has
  /// no `make` (or memory runs out).
  @inline(__always)
  public func get() -> UnsafeMutablePointer<T>? {
    poolGet(raw)?.assumingMemoryBound(to: T.self)
  }

  /// Gives `value` back to the pool. It must come from `get` of a `Pool<T>` (or be GoAlloc
  /// memory of at least `MemoryLayout<T>.stride` bytes) and is the pool's afterwards.
  @inline(__always)
  public func put(_ value: UnsafeMutablePointer<T>) {
    poolPut(raw, UnsafeMutableRawPointer(value))
  }

  /// What the pool holds and has done (see `PoolStats`).
  public var stats: PoolStats { poolStats(raw) }
}

/// A pool's `make`, boxed for the core's C-style constructor (a C function pointer cannot name
/// T, so it calls through this base class).
class PoolMakerBase {
  func construct(_ obj: UnsafeMutableRawPointer) {}
}

final class PoolMaker<T: BitwiseCopyable>: PoolMakerBase {
  let make: @Sendable () -> T
  init(_ make: @escaping @Sendable () -> T) { self.make = make }
  override func construct(_ obj: UnsafeMutableRawPointer) { obj.initializeMemory(as: T.self, to: make()) }
}

@_exported import struct GoAllocCore.PoolStats
