// GoAlloc: the public Swift API over GoAllocCore.
//
// `GoAlloc.allocate` and friends serve memory from Go's size classes as they are (18 B -> the
// 24 B class, 8-aligned; noscan requests under 16 B share 16 B blocks through the tiny
// allocator). Memory is freed explicitly with `deallocate`. `MemStats.read()` gives a live,
// consistent snapshot of the heap.
//
// The tooling around the heap (allocation traces, heap maps and their SVG pictures) is the
// separate library GoAllocTools; the size-class generator is SizeClassGenerator (mksizeclasses).
@_exported import struct GoAllocCore.MemStats
import GoAllocCore

public enum GoAlloc {
  /// Allocates `size` bytes (at least 1).
  /// - Parameters:
  ///   - scan: the memory will hold pointers (GC mode scans it; it never uses the tiny allocator).
  /// - Returns: the memory, or nil when the system is out of memory.
  @inline(__always)
  public static func allocate(_ size: Int, scan: Bool = false) -> UnsafeMutableRawPointer? {
    goMalloc(size, noscan: !scan, mallocMode: false)
  }

  /// Allocates `size` bytes that read as zero. Fresh memory from the OS is not cleared again.
  @inline(__always)
  public static func allocateZeroed(_ size: Int, scan: Bool = false) -> UnsafeMutableRawPointer? {
    goMalloc(size, noscan: !scan, zero: true, mallocMode: false)
  }

  /// Allocates `size` bytes at a multiple of `alignment`, a power of two (up to 1 GiB).
  public static func allocate(_ size: Int, alignment: Int, scan: Bool = false) -> UnsafeMutableRawPointer? {
    precondition(alignment > 0 && alignment & (alignment - 1) == 0 && alignment <= 1 << 30,
                 "alignment must be a power of two no larger than 1 GiB")
    return goAlignedAlloc(size, alignment: alignment, noscan: !scan, mallocMode: false)
  }

  /// Frees memory from `allocate`. A pointer that is not a live object of this heap stops the
  /// process with a one-line report (or is counted and ignored with GOALLOC_DEBUG=badfree=warn).
  @inline(__always)
  public static func deallocate(_ p: UnsafeMutableRawPointer?) {
    goFree(p, op: "deallocate")
  }

  /// Bytes usable at `p`: its size class's size, or the large span's size. Tiny objects (noscan,
  /// under 16 B, packed into shared blocks) report 0: only the requested bytes are theirs.
  public static func usableSize(_ p: UnsafeRawPointer) -> Int {
    GoAllocCore.usableSize(p, op: "usableSize")
  }

  /// Gives empty spans back to the page heap and free pages back to the OS. Returns the bytes
  /// released.
  @discardableResult
  public static func releaseFreeMemory() -> Int { goReleaseFreeMemory() }

  /// Flushes the calling thread's cache (its spans and counters go back to the heap).
  public static func flushThreadCache() { releaseThreadCache() }

  /// The size class (1...67) that serves `size` bytes, or 0 for a large object.
  public static func sizeClass(for size: Int, mallocMode: Bool = false) -> Int {
    size > 32768 ? 0 : SizeClassInfo.sizeClass(for: max(size, 1), mallocMode: mallocMode)
  }
}

extension MemStats {
  /// A snapshot of the process-wide heap, taken without stopping allocation.
  public static func read() -> MemStats { goReadMemStats() }
}

/// Fragmentation of the process-wide heap: bytes lost to size-class rounding (estimated), in
/// partly filled spans, in span tails, and in free pages held, per size class and in total.
public struct FragmentationReport {
  public var roundingWaste: UInt64
  public var total: Fragmentation
  /// Index = size class (0: large objects).
  public var bySizeClass: [Fragmentation]

  public static func read() -> FragmentationReport {
    guard let h = globalHeap() else {
      return FragmentationReport(roundingWaste: 0, total: Fragmentation(), bySizeClass: [])
    }
    var per = [Fragmentation](repeating: Fragmentation(), count: 68)
    let total = per.withUnsafeMutableBufferPointer { h.fragmentation(perClass: $0.baseAddress!) }
    return FragmentationReport(roundingWaste: MemStats.read(h).roundingWaste, total: total, bySizeClass: per)
  }
}

extension MemStats {
  /// Per size class (1...67): slot size, objects allocated, objects freed (Go's BySize).
  public static func bySize() -> [(size: Int, mallocs: UInt64, frees: UInt64)] {
    guard let h = globalHeap() else { return [] }
    var buf = [(UInt64, UInt64)](repeating: (0, 0), count: 68)
    _ = buf.withUnsafeMutableBufferPointer { MemStats.read(h, bySize: $0.baseAddress!) }
    return (1..<68).map { (SizeClassInfo.size(ofClass: $0), buf[$0].0, buf[$0].1) }
  }
}

/// The GC mode (stage 1: a stop-the-world mark-sweep collector on the same heap; the contracts
/// are those of include/goalloc.h's `goalloc_gc_*` functions).
public enum GC {
  /// A collected object of `size` bytes. `scan`: it may hold pointers (zeroed, scanned);
  /// otherwise it is never scanned (and not zeroed).
  public static func allocate(_ size: Int, scan: Bool = true) -> UnsafeMutableRawPointer? {
    goGCMalloc(size, noscan: !scan)
  }
  /// An uncollectable object: zeroed, scanned, a root until `free`d.
  public static func allocateUncollectable(_ size: Int) -> UnsafeMutableRawPointer? {
    goGCMallocUncollectable(size)
  }
  /// Resizes `p`, keeping its kind (nil: a new scan object; size 0: frees p, returns nil).
  public static func reallocate(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    goGCRealloc(p, size)
  }
  /// Frees `p` now (any kind).
  public static func free(_ p: UnsafeMutableRawPointer?) { goGCFree(p) }
  /// Collects now. False when refused (called from a signal handler).
  @discardableResult public static func collect() -> Bool { goGCCollect() == 0 }
  /// GOGC (negative: off); setting returns nothing, `setPercent` returns the old value.
  @discardableResult public static func setPercent(_ percent: Int) -> Int { Int(goGCSetPercent(Int32(percent))) }
  /// The soft memory limit in bytes (0: none); returns the old one.
  @discardableResult public static func setMemoryLimit(_ bytes: UInt64) -> UInt64 { goGCSetMemoryLimit(bytes) }
  /// Registers the calling thread (needed only by threads that never allocate through GoAlloc).
  @discardableResult public static func registerThread() -> Bool { goGCRegisterThread() == 0 }
  /// Unregisters the calling thread until it allocates again.
  public static func unregisterThread() { goGCUnregisterThread() }
  /// Makes [lo, hi) a root. False for lo > hi or a full table.
  @discardableResult public static func addRoots(_ lo: UnsafeRawPointer, _ hi: UnsafeRawPointer) -> Bool {
    goGCAddRoots(UInt(bitPattern: lo), UInt(bitPattern: hi)) == 0
  }
  /// Removes every added range inside [lo, hi).
  @discardableResult public static func removeRoots(_ lo: UnsafeRawPointer, _ hi: UnsafeRawPointer) -> Bool {
    goGCRemoveRoots(UInt(bitPattern: lo), UInt(bitPattern: hi)) == 0
  }
  /// The start of the object holding `p`, or nil when it is not in GoAlloc's heap.
  public static func base(of p: UnsafeRawPointer) -> UnsafeMutableRawPointer? { goGCBase(p) }

  // MARK: the write barrier (goalloc_gc_write_barrier)

  /// `slot.pointee = value` through the write barrier: while a concurrent mark runs
  /// (GOALLOC_DEBUG=gcconc=1) the old and the new value are shaded (marked and queued when they
  /// point into unmarked collected objects), otherwise a plain store. Under
  /// GOALLOC_DEBUG=gcdirty=barrier every pointer store into collected memory must go through
  /// it (or through a `PointerField`).
  public static func writeBarrier(_ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ value: UnsafeMutableRawPointer?) {
    goGCWriteBarrier(slot, value)
  }

  /// A pointer field in collected memory (or anywhere a pointer-aligned word lies) whose stores
  /// go through the write barrier (`writeBarrier`), so the program keeps gcdirty=barrier's
  /// promise by construction. It is only an address: copy it freely; it keeps nothing alive
  /// (the object holding the field must be reachable as usual). Loads are plain.
  ///
  ///     let node = GC.allocate(16)!
  ///     let next = GC.PointerField(node, offset: 0)
  ///     next.store(GC.allocate(16))
  public struct PointerField: Hashable, @unchecked Sendable {
    /// The field's address.
    public let address: UnsafeMutablePointer<UnsafeMutableRawPointer?>

    public init(_ address: UnsafeMutablePointer<UnsafeMutableRawPointer?>) { self.address = address }
    /// The field `offset` bytes into the object at `base` (offset a multiple of 8).
    public init(_ base: UnsafeMutableRawPointer, offset: Int) {
      precondition(offset & 7 == 0 && UInt(bitPattern: base) & 7 == 0, "a pointer field must be 8-byte aligned")
      address = (base + offset).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    /// The field's pointer.
    @inline(__always) public func load() -> UnsafeMutableRawPointer? { address.pointee }
    /// Stores `value` through the write barrier.
    @inline(__always) public func store(_ value: UnsafeMutableRawPointer?) { goGCWriteBarrier(address, value) }
  }

  // MARK: finalizers, cleanups, weak pointers (goalloc.h documents each contract)

  /// A finalizer: `fn(p, arg)` runs on GoAlloc's cleanup thread once `p`, the start of a
  /// collected object, is unreachable; `p` is resurrected for the call. One per object; `fn` nil
  /// removes it. False when refused (one line on stderr: not the start of a live collected
  /// object, a finalizer already set, or `arg` pointing into the object).
  @discardableResult
  public static func setFinalizer(_ p: UnsafeMutableRawPointer, arg: UnsafeMutableRawPointer? = nil,
                                  _ fn: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void)?) -> Bool {
    goGCSetFinalizer(p, fn.map { unsafeBitCast($0, to: UnsafeRawPointer.self) }, arg) == 0
  }

  /// A registered cleanup, to cancel it. Holds the object's address complemented: keeping it
  /// keeps nothing alive.
  public struct Cleanup: Hashable, @unchecked Sendable {
    let id: UInt64
    let hidden: UInt
    let box: UnsafeMutableRawPointer?  // the closure of `addCleanup(_:_:)`, released once

    /// Cancels the cleanup unless it was queued already: true when cancelled. Keep the object
    /// reachable across the call to be sure it is.
    @discardableResult public func cancel() -> Bool {
      if goGCCancelCleanup(id, hidden) == 0 { return false }
      if let box { Unmanaged<CleanupBox>.fromOpaque(box).release() }
      return true
    }
  }

  /// A cleanup: `fn(arg)` runs on GoAlloc's cleanup thread once the collected object holding
  /// `p` is unreachable for good; the object is gone by then, so `arg` must not reach it (one
  /// pointing into it is refused). Nil when refused (one line on stderr for a `p` outside live
  /// collected objects and for such an `arg`).
  public static func addCleanup(_ p: UnsafeRawPointer, arg: UnsafeMutableRawPointer? = nil,
                                _ fn: @convention(c) (UnsafeMutableRawPointer?) -> Void) -> Cleanup? {
    let c = goGCAddCleanup(UnsafeMutableRawPointer(mutating: p), unsafeBitCast(fn, to: UnsafeRawPointer.self), arg)
    return c.id == 0 ? nil : Cleanup(id: c.id, hidden: c.hidden, box: nil)
  }

  /// A cleanup running `body` once the collected object holding `p` is unreachable for good.
  /// `body` must not capture `p` (nor anything that reaches the object): Swift memory is not
  /// scanned, so a capture would not keep the object alive, and `body` would meet freed memory.
  public static func addCleanup(_ p: UnsafeRawPointer, _ body: @escaping @Sendable () -> Void) -> Cleanup? {
    let box = Unmanaged.passRetained(CleanupBox(body)).toOpaque()
    let c = goGCAddCleanup(UnsafeMutableRawPointer(mutating: p), unsafeBitCast(runCleanupBox, to: UnsafeRawPointer.self), box)
    if c.id == 0 {
      Unmanaged<CleanupBox>.fromOpaque(box).release()
      return nil
    }
    return Cleanup(id: c.id, hidden: c.hidden, box: box)
  }

  /// Cleanups and finalizers queued for the cleanup thread or running on it.
  public static var cleanupsPending: Int { goGCCleanupsPending() }

  /// A weak pointer (Go's weak.Pointer): does not keep its object alive; `pointer` is the
  /// pointer it was made from until a cycle finds the object unreachable (or it is freed), nil
  /// for ever after. Two made from the same pointer are equal. It holds a small collected
  /// handle: keep it where collected pointers are seen (stack, globals, collected scan memory),
  /// not only in Swift objects or arrays, which are never scanned.
  public struct WeakPointer: Hashable, @unchecked Sendable {
    public let handle: UnsafeMutableRawPointer

    /// Nil when `p` is not in a live collected object (one line on stderr) or memory ran out.
    public init?(_ p: UnsafeMutableRawPointer) {
      guard let h = goGCWeakMake(p) else { return nil }
      handle = h
    }

    /// The object's pointer, or nil once it is gone.
    public var pointer: UnsafeMutableRawPointer? { goGCWeakGet(handle) }
  }
}

/// A Swift closure registered as a cleanup (retained until it runs or is cancelled).
final class CleanupBox {
  let body: @Sendable () -> Void
  init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

private let runCleanupBox: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
  guard let arg else { return }
  Unmanaged<CleanupBox>.fromOpaque(arg).takeRetainedValue().body()
}
