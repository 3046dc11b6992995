// Atomics: atomic operations on words that live in raw (mmap'd) memory.
//
// The allocator's structures are plain structs behind raw pointers, so their shared words are
// reached by address: `atomicAdd64(&span.pointee.freeState, ...)` resolves to the field's real
// address (pointee is addressable), and the word is viewed as a stdlib `Atomic` in place. Every
// word touched here by more than one thread is touched only through these functions.
//
// See Malloc.swift for an overview of the allocator.
import Synchronization

@inline(__always) @usableFromInline
func _atomic64(_ p: UnsafeMutablePointer<UInt64>) -> UnsafeMutablePointer<Atomic<UInt64>> {
  UnsafeMutableRawPointer(p).assumingMemoryBound(to: Atomic<UInt64>.self)
}
@inline(__always) @usableFromInline
func _atomic32(_ p: UnsafeMutablePointer<UInt32>) -> UnsafeMutablePointer<Atomic<UInt32>> {
  UnsafeMutableRawPointer(p).assumingMemoryBound(to: Atomic<UInt32>.self)
}
@inline(__always) @usableFromInline
func _atomicUInt(_ p: UnsafeMutablePointer<UInt>) -> UnsafeMutablePointer<Atomic<UInt>> {
  UnsafeMutableRawPointer(p).assumingMemoryBound(to: Atomic<UInt>.self)
}

@inline(__always) @usableFromInline func atomicLoad64(_ p: UnsafeMutablePointer<UInt64>) -> UInt64 {
  _atomic64(p).pointee.load(ordering: .acquiring)
}
@inline(__always) @usableFromInline func atomicLoadRelaxed64(_ p: UnsafeMutablePointer<UInt64>) -> UInt64 {
  _atomic64(p).pointee.load(ordering: .relaxed)
}
@inline(__always) @usableFromInline func atomicStore64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) {
  _atomic64(p).pointee.store(v, ordering: .releasing)
}
@inline(__always) @usableFromInline func atomicStoreRelaxed64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) {
  _atomic64(p).pointee.store(v, ordering: .relaxed)
}
/// Returns the old value.
@inline(__always) @usableFromInline @discardableResult
func atomicAdd64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) -> UInt64 {
  _atomic64(p).pointee.wrappingAdd(v, ordering: .acquiringAndReleasing).oldValue
}
@inline(__always) @usableFromInline @discardableResult
func atomicAddRelaxed64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) -> UInt64 {
  _atomic64(p).pointee.wrappingAdd(v, ordering: .relaxed).oldValue
}
/// Returns the old value.
@inline(__always) @usableFromInline
func atomicOr64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) -> UInt64 {
  _atomic64(p).pointee.bitwiseOr(v, ordering: .acquiringAndReleasing).oldValue
}
/// Returns the old value.
@inline(__always) @usableFromInline @discardableResult
func atomicAnd64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) -> UInt64 {
  _atomic64(p).pointee.bitwiseAnd(v, ordering: .acquiringAndReleasing).oldValue
}
/// Returns the old value.
@inline(__always) @usableFromInline @discardableResult
func atomicAnd32(_ p: UnsafeMutablePointer<UInt32>, _ v: UInt32) -> UInt32 {
  _atomic32(p).pointee.bitwiseAnd(v, ordering: .acquiringAndReleasing).oldValue
}
@inline(__always) @usableFromInline
func atomicExchange64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) -> UInt64 {
  _atomic64(p).pointee.exchange(v, ordering: .acquiringAndReleasing)
}
@inline(__always) @usableFromInline
func atomicCAS64(_ p: UnsafeMutablePointer<UInt64>, _ expected: UInt64, _ desired: UInt64) -> Bool {
  _atomic64(p).pointee.compareExchange(expected: expected, desired: desired,
                                       ordering: .acquiringAndReleasing).exchanged
}

@inline(__always) @usableFromInline func atomicLoad32(_ p: UnsafeMutablePointer<UInt32>) -> UInt32 {
  _atomic32(p).pointee.load(ordering: .acquiring)
}
@inline(__always) @usableFromInline func atomicLoadRelaxed32(_ p: UnsafeMutablePointer<UInt32>) -> UInt32 {
  _atomic32(p).pointee.load(ordering: .relaxed)
}
@inline(__always) @usableFromInline func atomicStoreRelaxed32(_ p: UnsafeMutablePointer<UInt32>, _ v: UInt32) {
  _atomic32(p).pointee.store(v, ordering: .relaxed)
}
@inline(__always) @usableFromInline func atomicStore32(_ p: UnsafeMutablePointer<UInt32>, _ v: UInt32) {
  _atomic32(p).pointee.store(v, ordering: .releasing)
}
@inline(__always) @usableFromInline
func atomicExchange32(_ p: UnsafeMutablePointer<UInt32>, _ v: UInt32, acquire: Bool) -> UInt32 {
  acquire ? _atomic32(p).pointee.exchange(v, ordering: .acquiring)
          : _atomic32(p).pointee.exchange(v, ordering: .releasing)
}
@inline(__always) @usableFromInline
func atomicCAS32(_ p: UnsafeMutablePointer<UInt32>, _ expected: UInt32, _ desired: UInt32) -> Bool {
  _atomic32(p).pointee.compareExchange(expected: expected, desired: desired,
                                       ordering: .acquiringAndReleasing).exchanged
}

@inline(__always) @usableFromInline func atomicLoadUInt(_ p: UnsafeMutablePointer<UInt>) -> UInt {
  _atomicUInt(p).pointee.load(ordering: .acquiring)
}
@inline(__always) @usableFromInline func atomicStoreUInt(_ p: UnsafeMutablePointer<UInt>, _ v: UInt) {
  _atomicUInt(p).pointee.store(v, ordering: .releasing)
}
@inline(__always) @usableFromInline func atomicLoadRelaxedUInt(_ p: UnsafeMutablePointer<UInt>) -> UInt {
  _atomicUInt(p).pointee.load(ordering: .relaxed)
}
@inline(__always) @usableFromInline func atomicStoreRelaxedUInt(_ p: UnsafeMutablePointer<UInt>, _ v: UInt) {
  _atomicUInt(p).pointee.store(v, ordering: .relaxed)
}
@inline(__always) @usableFromInline
func atomicCASUInt(_ p: UnsafeMutablePointer<UInt>, _ expected: UInt, _ desired: UInt) -> Bool {
  _atomicUInt(p).pointee.compareExchange(expected: expected, desired: desired,
                                         ordering: .acquiringAndReleasing).exchanged
}

@inline(__always) @usableFromInline
func _atomic8(_ p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<Atomic<UInt8>> {
  UnsafeMutableRawPointer(p).assumingMemoryBound(to: Atomic<UInt8>.self)
}
/// Returns the old value.
@inline(__always) @usableFromInline @discardableResult
func atomicAdd8(_ p: UnsafeMutablePointer<UInt8>, _ v: UInt8) -> UInt8 {
  _atomic8(p).pointee.wrappingAdd(v, ordering: .acquiringAndReleasing).oldValue
}
@inline(__always) @usableFromInline @discardableResult
func atomicSub8(_ p: UnsafeMutablePointer<UInt8>, _ v: UInt8) -> UInt8 {
  _atomic8(p).pointee.wrappingSubtract(v, ordering: .acquiringAndReleasing).oldValue
}
@inline(__always) @usableFromInline func atomicStore8(_ p: UnsafeMutablePointer<UInt8>, _ v: UInt8) {
  _atomic8(p).pointee.store(v, ordering: .releasing)
}
/// A counter written by one thread and read by others: a plain add, made visible atomically.
@inline(__always) @usableFromInline func counterBump(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64 = 1) {
  atomicStoreRelaxed64(p, atomicLoadRelaxed64(p) &+ v)
}
@inline(__always) @usableFromInline func counterBump32(_ p: UnsafeMutablePointer<UInt32>, _ v: UInt32 = 1) {
  atomicStoreRelaxed32(p, atomicLoadRelaxed32(p) &+ v)
}

// Sequentially consistent forms (the parallel mark's handshake on a span's mark bits and its
// queued byte, MGCMark), and a 32-bit add.
@inline(__always) @usableFromInline
func atomicOrSeqCst64(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) -> UInt64 {
  _atomic64(p).pointee.bitwiseOr(v, ordering: .sequentiallyConsistent).oldValue
}
@inline(__always) @usableFromInline func atomicLoadSeqCst64(_ p: UnsafeMutablePointer<UInt64>) -> UInt64 {
  _atomic64(p).pointee.load(ordering: .sequentiallyConsistent)
}
@inline(__always) @usableFromInline func atomicLoadSeqCst8(_ p: UnsafeMutablePointer<UInt8>) -> UInt8 {
  _atomic8(p).pointee.load(ordering: .sequentiallyConsistent)
}
@inline(__always) @usableFromInline func atomicStoreSeqCst8(_ p: UnsafeMutablePointer<UInt8>, _ v: UInt8) {
  _atomic8(p).pointee.store(v, ordering: .sequentiallyConsistent)
}
@inline(__always) @usableFromInline
func atomicCASSeqCst8(_ p: UnsafeMutablePointer<UInt8>, _ expected: UInt8, _ desired: UInt8) -> Bool {
  _atomic8(p).pointee.compareExchange(expected: expected, desired: desired, ordering: .sequentiallyConsistent).exchanged
}
/// Returns the old value.
@inline(__always) @usableFromInline @discardableResult
func atomicAdd32(_ p: UnsafeMutablePointer<UInt32>, _ v: UInt32) -> UInt32 {
  _atomic32(p).pointee.wrappingAdd(v, ordering: .acquiringAndReleasing).oldValue
}
