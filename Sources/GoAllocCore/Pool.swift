// Pool: objects of one size kept for the program to reuse (Go's sync.Pool), with Go 1.13's
// victim rule so that a pool never pins memory across two collections.
//
// Layout: each pool is one mapping of its own (reused after a pool is destroyed, so a stale
// handle reads a dead header rather than unmapped memory): a 128-byte PoolHeader (the object
// size, the constructor, the victim chain, counters), then `PoolHeader.slots` PoolLocals of one
// cache line each, one per thread slot (Go's per-P poolLocal; untouched locals cost no RSS).
// The objects come from malloc of the pool's size, so dropping one is a plain free; the chains'
// blocks come from the registry's FixAlloc. The registry's, a header's and a local's fields are
// reached through pointers of their own (`r.ticks.pointee`, `lockAcquire(l.lock)`: "Fields by
// address" below), never as `x.pointee.field`, which is an access of the whole struct.
//   PoolLocal   a private object, which only the slot's thread touches (and a rotation, by the
//               protocol below), and a shared chain of PoolBlocks (62 object pointers each)
//               under the local's lock, which other threads steal from when theirs is empty.
//   slots       each thread that uses a pool gets a slot (1...4095), kept in its cache as the
//               byte offset of its local (MCacheHeader.poolOffset), the same in every pool, and
//               given back when its cache goes (thread exit: its private objects move to its
//               chains first); the next thread to take the slot inherits the chains. Threads
//               without a cache of their own, and those beyond 4095, share slot 0, always under
//               its lock (poolOffset < 0: no fast path).
// Get: the private object, else the local's chain, else a steal from another local's chain,
// else the victim chain, else a fresh object (malloc of the size) given to the constructor,
// else NULL. Put: into the private slot if it is empty, else onto the local's chain. Pointers
// only: an object's bytes are never written by the pool.
// The private slot without atomic read-modify-writes (Go pins the P; we cannot): the owner's
// fast path is  busy = 1; compiler barrier; if revoke: slow path; use `private`; busy = 0
// (release), all plain loads and stores. A rotation takes a local's private object with the
// local's lock held (the owner's slow path takes it too): revoke = 1, then membarrier(2), which
// runs a full barrier on every thread, so that from then on an owner either sees revoke or has
// its busy = 1 visible; it waits for busy == 0, takes the object, and clears revoke. Without
// membarrier (an old kernel, a seccomp filter), every thread's poolOffset is negative: no fast
// path, the lock every time.
// Rotation (Go's poolCleanup, `poolsRotate`): every local's private object and chain move to
// the pool's victim chain, and the victim chain that was there is dropped (its objects freed).
// It runs after every collection of the GC mode, every `ticksPerRotation` scavenger ticks when
// the GC mode is not in use, and twice on malloc_trim / goalloc_release_free_memory (everything
// dropped). The heap calls in through `MHeap.poolEvents`, installed by the first pool, so the
// tiers below never name this one and the malloc/free fast paths are untouched.
//
// Invariants: an object is in at most one place (a private slot, one chain, or a caller's
// hands); a private slot is written only by its owner's fast path (busy set, revoke clear) or
// under its local's lock with no fast path running on it; no pool lock is held while calling
// malloc, free or the constructor (the pools' locks nest inside nothing of the heap's); lock
// order: rotateLock -> locals' locks (in slot order) -> a victim lock -> the registry lock;
// pools are created and destroyed, and slots handed out, only under rotateLock, so a rotation
// (or fork's prepare) sees a fixed set of pools and slots. Not async-signal-safe (as malloc).
import CGoAllocShim

/// The constructor of a pool's objects: called with a fresh object of the pool's size (not
/// zeroed) and the pool's argument.
public typealias PoolConstructor = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer?) -> Void

/// One thread slot's share of a pool: 64 bytes, one cache line. `privateObj` first: the fast
/// paths address it as the local itself.
struct PoolLocal {
  var privateObj: UInt = 0                     // an object or 0 (the protocol in the header)
  var busy: UInt32 = 0                         // the owner is in its fast path
  var revoke: UInt32 = 0                       // a rotation is taking the private object
  var lock: LockWord = 0
  var _pad0: UInt32 = 0
  var top: UnsafeMutableRawPointer? = nil      // the shared chain's newest block (lock)
  var count: UInt = 0                          // objects in the chain (lock; read relaxed as a hint)
  var spare: UnsafeMutableRawPointer? = nil    // an empty block kept for the next push (lock)
  var _pad1: (UInt64, UInt64) = (0, 0)
  static let busyOffset = 8
  static let revokeOffset = 12
}

/// A block of a chain: word 0 the next (older) block, word 1 the number of objects, then
/// `PoolBlock.capacity` object pointers, oldest first.
enum PoolBlock {
  static let bytes = 512
  static let capacity = bytes / 8 - 2
  @inline(__always) static func next(_ b: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
    b.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
  }
  @inline(__always) static func count(_ b: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Int> {
    (b + 8).assumingMemoryBound(to: Int.self)
  }
  @inline(__always) static func slots(_ b: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt> {
    (b + 16).assumingMemoryBound(to: UInt.self)
  }
}

/// A chain of blocks taken whole from somewhere (a local, a victim), with its object count.
struct PoolChain {
  var top: UnsafeMutableRawPointer? = nil
  var count: UInt = 0
}

/// A pool's first 128 bytes; its locals follow (`PoolHeader.localsOffset`).
public struct PoolHeader {
  var _first: UInt64 = 0                       // no atomics at offset 0
  var size: Int = 0                            // bytes per object
  var ctor: PoolConstructor? = nil
  var arg: UnsafeMutableRawPointer? = nil
  var next: UnsafeMutablePointer<PoolHeader>? = nil   // the registry's live or free list
  var prev: UnsafeMutablePointer<PoolHeader>? = nil
  var victim = PoolChain()                     // victimLock; victim.count read relaxed as a hint
  var victimLock: LockWord = 0
  var _pad0: UInt32 = 0
  var created: UInt64 = 0                      // atomics: objects from the constructor,
  var dropped: UInt64 = 0                      //   objects freed by rotations and trims,
  var rotations: UInt64 = 0                    //   rotations
  var magic: UInt64 = PoolHeader.liveMagic     // atomic: liveMagic while the pool lives

  static let liveMagic: UInt64 = 0x676f_706f_6f6c_0001
  static let localsOffset = 128
  static let slots = 4096                      // slot 0 is the shared one
  /// Bytes of one pool's mapping.
  static let mappingBytes = roundUp(localsOffset + slots * MemoryLayout<PoolLocal>.stride, 4096)
  /// MCacheHeader.poolOffset of slot s.
  @inline(__always) static func offset(ofSlot s: Int) -> Int { localsOffset + s * MemoryLayout<PoolLocal>.stride }
  @inline(__always) static func slot(ofOffset o: Int) -> Int { (o - localsOffset) / MemoryLayout<PoolLocal>.stride }
}

/// Every pool of the process, and the metadata they share. One mapping.
struct PoolRegistry {
  var _first: UInt64 = 0
  var lock: LockWord = 0                       // the lists, the slots, the block allocator
  var rotateLock: LockWord = 0                 // rotations; creating, destroying; slots taken; fork
  var head: UnsafeMutablePointer<PoolHeader>? = nil   // live pools
  var free: UnsafeMutablePointer<PoolHeader>? = nil   // mappings of destroyed pools, for reuse
  var slotBits: UnsafeMutablePointer<UInt64>    // [slots / 64]: slots held by live threads
  var highSlot: UInt = 0                        // atomic: the highest slot ever handed out
  var membarrier = false                        // membarrier(2) is registered (rotations use it)
  var fastPaths = false                         // threads get fast paths (= membarrier; tests change it)
  var ticks = 0                                 // scavenger ticks seen (rotateLock)
  var persistent = PersistentAlloc()            // (lock)
  var blocks = FixAlloc(size: PoolBlock.bytes)  // (lock)
}

// Fields by address. The registry, a pool's header and its locals are reached through pointers
// from several threads, each field under its own lock or atomically; `x.pointee.field` would be
// an access of the whole struct (Swift's access instrumentation, and ThreadSanitizer with it,
// sees two threads writing one struct), so every field is reached through a pointer of its own:
// `r.ticks.pointee += 1`, `lockAcquire(r.lock)`. The offsets are the fields' (LayoutAndInvariantTests
// checks each against MemoryLayout.offset(of:)).
extension UnsafeMutablePointer {
  /// The field of type T at byte `offset` of the pointee.
  @inline(__always) func poolField<T>(_ offset: Int, _: T.Type) -> UnsafeMutablePointer<T> {
    (UnsafeMutableRawPointer(self) + offset).assumingMemoryBound(to: T.self)
  }
}

extension UnsafeMutablePointer where Pointee == PoolRegistry {
  @inline(__always) var lock: UnsafeMutablePointer<LockWord> { poolField(8, LockWord.self) }
  @inline(__always) var rotateLock: UnsafeMutablePointer<LockWord> { poolField(12, LockWord.self) }
  @inline(__always) var head: UnsafeMutablePointer<UnsafeMutablePointer<PoolHeader>?> { poolField(16, UnsafeMutablePointer<PoolHeader>?.self) }
  @inline(__always) var free: UnsafeMutablePointer<UnsafeMutablePointer<PoolHeader>?> { poolField(24, UnsafeMutablePointer<PoolHeader>?.self) }
  @inline(__always) var slotBits: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>> { poolField(32, UnsafeMutablePointer<UInt64>.self) }
  @inline(__always) var highSlot: UnsafeMutablePointer<UInt> { poolField(40, UInt.self) }
  @inline(__always) var membarrier: UnsafeMutablePointer<Bool> { poolField(48, Bool.self) }
  @inline(__always) var fastPaths: UnsafeMutablePointer<Bool> { poolField(49, Bool.self) }
  @inline(__always) var ticks: UnsafeMutablePointer<Int> { poolField(56, Int.self) }
  @inline(__always) var persistent: UnsafeMutablePointer<PersistentAlloc> { poolField(64, PersistentAlloc.self) }
  @inline(__always) var blocks: UnsafeMutablePointer<FixAlloc> {
    poolField(64 + MemoryLayout<PersistentAlloc>.stride, FixAlloc.self)
  }
}

extension UnsafeMutablePointer where Pointee == PoolHeader {
  @inline(__always) var size: UnsafeMutablePointer<Int> { poolField(8, Int.self) }
  @inline(__always) var ctor: UnsafeMutablePointer<PoolConstructor?> { poolField(16, PoolConstructor?.self) }
  @inline(__always) var arg: UnsafeMutablePointer<UnsafeMutableRawPointer?> { poolField(24, UnsafeMutableRawPointer?.self) }
  @inline(__always) var next: UnsafeMutablePointer<UnsafeMutablePointer<PoolHeader>?> { poolField(32, UnsafeMutablePointer<PoolHeader>?.self) }
  @inline(__always) var prev: UnsafeMutablePointer<UnsafeMutablePointer<PoolHeader>?> { poolField(40, UnsafeMutablePointer<PoolHeader>?.self) }
  @inline(__always) var victimTop: UnsafeMutablePointer<UnsafeMutableRawPointer?> { poolField(48, UnsafeMutableRawPointer?.self) }
  @inline(__always) var victimCount: UnsafeMutablePointer<UInt> { poolField(56, UInt.self) }
  @inline(__always) var victimLock: UnsafeMutablePointer<LockWord> { poolField(64, LockWord.self) }
  @inline(__always) var created: UnsafeMutablePointer<UInt64> { poolField(72, UInt64.self) }
  @inline(__always) var dropped: UnsafeMutablePointer<UInt64> { poolField(80, UInt64.self) }
  @inline(__always) var rotations: UnsafeMutablePointer<UInt64> { poolField(88, UInt64.self) }
  @inline(__always) var magic: UnsafeMutablePointer<UInt64> { poolField(96, UInt64.self) }
}

extension UnsafeMutablePointer where Pointee == PoolLocal {
  @inline(__always) var privateObj: UnsafeMutablePointer<UInt> { poolField(0, UInt.self) }
  @inline(__always) var busy: UnsafeMutablePointer<UInt32> { poolField(PoolLocal.busyOffset, UInt32.self) }
  @inline(__always) var revoke: UnsafeMutablePointer<UInt32> { poolField(PoolLocal.revokeOffset, UInt32.self) }
  @inline(__always) var lock: UnsafeMutablePointer<LockWord> { poolField(16, LockWord.self) }
  @inline(__always) var top: UnsafeMutablePointer<UnsafeMutableRawPointer?> { poolField(24, UnsafeMutableRawPointer?.self) }
  @inline(__always) var count: UnsafeMutablePointer<UInt> { poolField(32, UInt.self) }
  @inline(__always) var spare: UnsafeMutablePointer<UnsafeMutableRawPointer?> { poolField(40, UnsafeMutableRawPointer?.self) }
}

/// Scavenger ticks (100 ms each) between two rotations when the GC mode is not in use.
let ticksPerRotation = 10

nonisolated(unsafe) var poolInitLock: LockWord = 0
nonisolated(unsafe) var poolRegistryWord: UInt = 0

/// The registry, created with the first pool (nil when the OS refuses memory).
func poolRegistry() -> UnsafeMutablePointer<PoolRegistry>? {
  if let r = existingPoolRegistry { return r }
  guard let h = globalHeap() else { return nil }
  lockAcquire(&poolInitLock)
  defer { lockRelease(&poolInitLock) }
  if let r = existingPoolRegistry { return r }
  let head = roundUp(MemoryLayout<PoolRegistry>.stride, 64)
  guard let mem = sysMap(head + PoolHeader.slots / 8) else { return nil }
  let r = mem.bindMemory(to: PoolRegistry.self, capacity: 1)
  r.initialize(to: PoolRegistry(slotBits: (mem + head).bindMemory(to: UInt64.self, capacity: PoolHeader.slots / 64)))
  r.slotBits.pointee[0] = 1  // slot 0: shared by threads without a slot of their own
  r.membarrier.pointee = goalloc_membarrier_register() == 0
  r.fastPaths.pointee = r.membarrier.pointee
  atomicStoreUInt(&poolRegistryWord, UInt(bitPattern: r))
  atomicStoreUInt(&h.pointee.poolEvents, unsafeBitCast(poolEvent as PoolEventHandler, to: UInt.self))
  return r
}

@inline(__always) var existingPoolRegistry: UnsafeMutablePointer<PoolRegistry>? {
  UnsafeMutablePointer<PoolRegistry>(bitPattern: atomicLoadUInt(&poolRegistryWord))
}

/// The local of slot i (0..<slots) of pool p.
@inline(__always)
func poolLocalAt(_ p: UnsafeMutablePointer<PoolHeader>, _ i: Int) -> UnsafeMutablePointer<PoolLocal> {
  (UnsafeMutableRawPointer(p) + PoolHeader.offset(ofSlot: i)).assumingMemoryBound(to: PoolLocal.self)
}

/// One past the highest slot any thread has had: the locals a scan of a pool visits.
@inline(__always)
func poolSlotLimit(_ r: UnsafeMutablePointer<PoolRegistry>) -> Int { Int(atomicLoadUInt(r.highSlot)) + 1 }

// MARK: the API's core (Exports.swift: goalloc_pool_*; GoAlloc's Pool<T>)

/// goalloc_pool_create: a pool of objects of `size` bytes (0 counts as 1). nil with errno =
/// ENOMEM when memory runs out or the size cannot be allocated.
public func poolCreate(size: Int, constructor: PoolConstructor?, arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  if size < 0 || size > maxAllocSize { return enomem() }
  guard let r = poolRegistry() else { return enomem() }
  lockAcquire(r.rotateLock)
  defer { lockRelease(r.rotateLock) }
  lockAcquire(r.lock)
  var p = r.free.pointee
  if let f = p { r.free.pointee = f.next.pointee }
  lockRelease(r.lock)
  if p == nil {
    guard let m = sysMap(PoolHeader.mappingBytes) else { return enomem() }
    p = m.bindMemory(to: PoolHeader.self, capacity: 1)
  }
  let pool = p!
  pool.initialize(to: PoolHeader(size: max(size, 1), ctor: constructor, arg: arg))
  lockAcquire(r.lock)
  pool.next.pointee = r.head.pointee
  if let n = r.head.pointee { n.prev.pointee = pool }
  r.head.pointee = pool
  lockRelease(r.lock)
  return UnsafeMutableRawPointer(pool)
}

/// goalloc_pool_get: an object of the pool (see the file's header for the order), a new one
/// from the constructor, or nil (an empty pool without a constructor; out of memory; no pool).
/// The fast path: the thread's private object, plain loads and stores, no stack frame.
@inline(__always)
public func poolGet(_ pool: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  // (A thread without a cache reads the idle cache, whose poolOffset is 0.)
  if let pool {
    let off = MCache(goalloc_tls_fast().unsafelyUnwrapped).poolOffset
    if off > 0 {
      let l = pool + off
      let busy = (l + PoolLocal.busyOffset).assumingMemoryBound(to: UInt32.self)
      atomicStoreRelaxed32(busy, 1)
      goalloc_signal_fence()
      if atomicLoadRelaxed32((l + PoolLocal.revokeOffset).assumingMemoryBound(to: UInt32.self)) == 0 {
        let slot = l.assumingMemoryBound(to: UInt.self)
        let x = atomicLoadRelaxedUInt(slot)
        if x != 0 {
          atomicStoreRelaxedUInt(slot, 0)
          atomicStore32(busy, 0)
          return UnsafeMutableRawPointer(bitPattern: x)
        }
      }
      atomicStore32(busy, 0)
    }
  }
  return poolGetSlow(pool)
}

/// goalloc_pool_put: `obj` back into the pool (nil: nothing). The fast path: into the thread's
/// empty private slot, plain loads and stores. Returns whether the fast path took it (tests).
@inline(__always) @discardableResult
public func poolPut(_ pool: UnsafeMutableRawPointer?, _ obj: UnsafeMutableRawPointer?) -> Bool {
  // (A thread without a cache reads the idle cache, whose poolOffset is 0.)
  if let pool {
    let off = MCache(goalloc_tls_fast().unsafelyUnwrapped).poolOffset
    if off > 0 {
      let l = pool + off
      let busy = (l + PoolLocal.busyOffset).assumingMemoryBound(to: UInt32.self)
      atomicStoreRelaxed32(busy, 1)
      goalloc_signal_fence()
      let slot = l.assumingMemoryBound(to: UInt.self)
      // (nil is 0: putting it leaves the slot empty, so it needs no test here.)
      if atomicLoadRelaxed32((l + PoolLocal.revokeOffset).assumingMemoryBound(to: UInt32.self)) == 0
          && atomicLoadRelaxedUInt(slot) == 0 {
        atomicStoreRelaxedUInt(slot, unsafeBitCast(obj, to: UInt.self))
        atomicStore32(busy, 0)
        return true
      }
      atomicStore32(busy, 0)
    }
  }
  let r = poolPutSlow(pool, obj)
  goalloc_signal_fence()  // (no tail call: a tail call would give the fast path a stack frame)
  return r
}

/// The calling thread's slot (taken now if it has none) and its local in pool p. Threads
/// without a cache of their own (past their exit flush, the scavenger) use slot 0.
func poolLocalOfThread(_ p: UnsafeMutablePointer<PoolHeader>) -> (local: UnsafeMutablePointer<PoolLocal>, slot: Int) {
  var slot = 0
  var cache: MCache? = nil
  if let raw = existingThreadCache() { cache = MCache(raw) } else if goalloc_tls_state_get() == 0 { cache = currentCache() }
  if let c = cache, let r = existingPoolRegistry {
    var off = c.poolOffset
    if off == 0 {
      let s = poolTakeSlot(r)
      off = PoolHeader.offset(ofSlot: s)
      // Slot 0 is shared, and without membarrier no private slot may be used without the lock.
      if s == 0 || !r.fastPaths.pointee { off = -off }
      c.poolOffset = off
    }
    slot = PoolHeader.slot(ofOffset: off < 0 ? -off : off)
  }
  return (poolLocalAt(p, slot), slot)
}

/// A free slot (1...4095), or 0 (shared) when all are taken.
func poolTakeSlot(_ r: UnsafeMutablePointer<PoolRegistry>) -> Int {
  lockAcquire(r.rotateLock)
  lockAcquire(r.lock)
  defer {
    lockRelease(r.lock)
    lockRelease(r.rotateLock)
  }
  for w in 0..<(PoolHeader.slots / 64) where r.slotBits.pointee[w] != ~0 {
    let b = (~r.slotBits.pointee[w]).trailingZeroBitCount
    r.slotBits.pointee[w] |= 1 << UInt64(b)
    let slot = w * 64 + b
    if UInt(slot) > atomicLoadUInt(r.highSlot) { atomicStoreUInt(r.highSlot, UInt(slot)) }
    return slot
  }
  return 0
}

/// Get past the private object: the thread's own chain, a steal, the victim chain, the
/// constructor.
@inline(never)
func poolGetSlow(_ pool: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  guard let pool, let r = existingPoolRegistry else { return nil }
  let p = pool.assumingMemoryBound(to: PoolHeader.self)
  let (own, slot) = poolLocalOfThread(p)
  // The thread's own local under its lock: its private object (the fast path did not look when
  // the thread had no slot yet, or a rotation was taking it), then its chain.
  lockAcquire(own.lock)
  var x = atomicLoadRelaxedUInt(own.privateObj)
  if x != 0 {
    atomicStoreRelaxedUInt(own.privateObj, 0)
  } else {
    var chain = PoolChain(top: own.top.pointee, count: own.count.pointee)
    x = UInt(bitPattern: poolChainPop(&chain, spare: own.spare))
    own.top.pointee = chain.top
    atomicStoreRelaxedUInt(own.count, chain.count)
  }
  lockRelease(own.lock)
  if x != 0 { return UnsafeMutableRawPointer(bitPattern: x) }
  // Steal from every other local's chain, starting after this one (Go's order; private
  // objects are their owners').
  let limit = poolSlotLimit(r)
  var i = 1
  while i < limit {
    let l = poolLocalAt(p, (slot + i) % limit)
    i += 1
    if let x = poolPopShared(l) { return x }
  }
  // The victim chain: what the last rotation moved aside.
  if atomicLoadRelaxedUInt(p.victimCount) != 0 {
    lockAcquire(p.victimLock)
    var chain = PoolChain(top: p.victimTop.pointee, count: p.victimCount.pointee)
    let x = poolChainPop(&chain, spare: nil)
    p.victimTop.pointee = chain.top
    atomicStoreRelaxedUInt(p.victimCount, chain.count)
    lockRelease(p.victimLock)
    if let x { return x }
  }
  return poolNew(p)
}

/// A fresh object for the constructor, or nil without one.
func poolNew(_ p: UnsafeMutablePointer<PoolHeader>) -> UnsafeMutableRawPointer? {
  guard let ctor = p.ctor.pointee else { return nil }
  guard let obj = poolAllocate(UnsafeMutableRawPointer(p)) else { return nil }
  ctor(obj, p.arg.pointee)
  atomicAdd64(p.created, 1)
  return obj
}

/// malloc of the pool's size (malloc mode: 16-byte aligned from 16 B up). Not zeroed.
public func poolAllocate(_ pool: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
  goMalloc(pool.assumingMemoryBound(to: PoolHeader.self).size.pointee, noscan: true, mallocMode: true)
}

/// Put past the fast path: under the local's lock, into the private slot if it is empty, else
/// onto the chain. Returns false (the fast path did not take it).
@inline(never)
func poolPutSlow(_ pool: UnsafeMutableRawPointer?, _ obj: UnsafeMutableRawPointer?) -> Bool {
  guard let pool, let obj, existingPoolRegistry != nil else { return false }
  let (l, _) = poolLocalOfThread(pool.assumingMemoryBound(to: PoolHeader.self))
  lockAcquire(l.lock)
  if atomicLoadRelaxedUInt(l.privateObj) == 0 {
    atomicStoreRelaxedUInt(l.privateObj, UInt(bitPattern: obj))
    lockRelease(l.lock)
    return false
  }
  var chain = PoolChain(top: l.top.pointee, count: l.count.pointee)
  let ok = poolChainPush(&chain, obj, spare: l.spare)
  l.top.pointee = chain.top
  atomicStoreRelaxedUInt(l.count, chain.count)
  lockRelease(l.lock)
  if !ok { goFree(obj) }  // no memory for a block: the object goes back to the heap
  return false
}

/// The newest object of l's chain, or nil.
func poolPopShared(_ l: UnsafeMutablePointer<PoolLocal>) -> UnsafeMutableRawPointer? {
  if atomicLoadRelaxedUInt(l.count) == 0 { return nil }
  lockAcquire(l.lock)
  var chain = PoolChain(top: l.top.pointee, count: l.count.pointee)
  let x = poolChainPop(&chain, spare: l.spare)
  l.top.pointee = chain.top
  atomicStoreRelaxedUInt(l.count, chain.count)
  lockRelease(l.lock)
  return x
}

/// Pushes onto a chain (its owner's lock held). False when no block could be had.
func poolChainPush(_ c: inout PoolChain, _ obj: UnsafeMutableRawPointer,
                   spare: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Bool {
  if c.top == nil || PoolBlock.count(c.top!).pointee == PoolBlock.capacity {
    var b: UnsafeMutableRawPointer? = nil
    if let spare, let s = spare.pointee {
      b = s
      spare.pointee = nil
    } else {
      b = poolBlockAlloc()
    }
    guard let nb = b else { return false }
    PoolBlock.next(nb).pointee = c.top
    PoolBlock.count(nb).pointee = 0
    c.top = nb
  }
  let b = c.top!
  let n = PoolBlock.count(b).pointee
  PoolBlock.slots(b)[n] = UInt(bitPattern: obj)
  PoolBlock.count(b).pointee = n + 1
  c.count += 1
  return true
}

/// Pops the newest object of a chain (its owner's lock held); an emptied block becomes the
/// spare (if there is a place for one and it is free) or goes back to the registry.
func poolChainPop(_ c: inout PoolChain, spare: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> UnsafeMutableRawPointer? {
  guard let b = c.top else { return nil }
  let n = PoolBlock.count(b).pointee - 1
  let x = PoolBlock.slots(b)[n]
  PoolBlock.count(b).pointee = n
  c.count -= 1
  if n == 0 {
    c.top = PoolBlock.next(b).pointee
    if let spare, spare.pointee == nil { spare.pointee = b } else { poolBlockFree(b) }
  }
  return UnsafeMutableRawPointer(bitPattern: x)
}

func poolBlockAlloc() -> UnsafeMutableRawPointer? {
  guard let r = existingPoolRegistry else { return nil }
  lockAcquire(r.lock)
  let b = r.blocks.pointee.alloc(&r.persistent.pointee)
  lockRelease(r.lock)
  return b
}

func poolBlockFree(_ b: UnsafeMutableRawPointer) {
  guard let r = existingPoolRegistry else { return }
  lockAcquire(r.lock)
  r.blocks.pointee.free(b)
  lockRelease(r.lock)
}

// MARK: rotation and trimming

/// Go's poolCleanup for every pool: each local's objects move to its pool's victim chain; the
/// victim chain they replace is dropped (its objects freed, with no pool lock held but
/// rotateLock). `times` rotations in a row (2: everything dropped). Returns the objects freed.
@discardableResult
func poolsRotate(times: Int) -> Int {
  guard let r = existingPoolRegistry else { return 0 }
  var freed = 0
  lockAcquire(r.rotateLock)
  for _ in 0..<times {
    var it = r.head.pointee  // (the list changes only under rotateLock)
    while let p = it {
      it = p.next.pointee
      let moved = poolTakeAll(r, p)
      lockAcquire(p.victimLock)
      let old = PoolChain(top: p.victimTop.pointee, count: p.victimCount.pointee)
      p.victimTop.pointee = moved.top
      atomicStoreRelaxedUInt(p.victimCount, moved.count)
      lockRelease(p.victimLock)
      atomicAdd64(p.rotations, 1)
      let n = poolDropChain(old)
      atomicAdd64(p.dropped, UInt64(n))
      freed += n
    }
  }
  lockRelease(r.rotateLock)
  return freed
}

/// Every local's chain and private object of pool p, as one chain (an object that finds no
/// block for it is freed: nothing is lost). Takes the private objects by the protocol in the
/// file's header: every local locked and revoked, one membarrier, each owner's fast path
/// waited out. rotateLock held.
func poolTakeAll(_ r: UnsafeMutablePointer<PoolRegistry>, _ p: UnsafeMutablePointer<PoolHeader>) -> PoolChain {
  var moved = PoolChain()
  let limit = poolSlotLimit(r)
  for i in 0..<limit {
    let l = poolLocalAt(p, i)
    lockAcquire(l.lock)
    atomicStoreRelaxed32(l.revoke, 1)
  }
  if r.membarrier.pointee && goalloc_membarrier() != 0 {
    // (Registered, so it cannot fail; if it did, a full fence on this side alone would not do.)
    fatal("goalloc_pool", "membarrier failed after it was registered")
  }
  for i in 0..<limit {
    let l = poolLocalAt(p, i)
    while atomicLoad32(l.busy) != 0 { goalloc_yield() }
    let taken = PoolChain(top: l.top.pointee, count: l.count.pointee)
    l.top.pointee = nil
    atomicStoreRelaxedUInt(l.count, 0)
    let x = atomicLoadRelaxedUInt(l.privateObj)
    atomicStoreRelaxedUInt(l.privateObj, 0)
    atomicStore32(l.revoke, 0)
    lockRelease(l.lock)
    poolChainAppend(&moved, taken)
    if x != 0, let obj = UnsafeMutableRawPointer(bitPattern: x), !poolChainPush(&moved, obj, spare: nil) {
      goFree(obj)
    }
  }
  return moved
}

/// Puts chain b's blocks on top of chain a's (walking b only).
func poolChainAppend(_ a: inout PoolChain, _ b: PoolChain) {
  guard let bt = b.top else { return }
  var last = bt
  while let n = PoolBlock.next(last).pointee { last = n }
  PoolBlock.next(last).pointee = a.top
  a.top = bt
  a.count += b.count
}

/// Frees every object of a chain (no pool lock held) and gives its blocks back.
func poolDropChain(_ c: PoolChain) -> Int {
  var n = 0
  var b = c.top
  while let blk = b {
    b = PoolBlock.next(blk).pointee
    let count = PoolBlock.count(blk).pointee
    for i in 0..<count { goFree(UnsafeMutableRawPointer(bitPattern: PoolBlock.slots(blk)[i])) }
    n += count
    poolBlockFree(blk)
  }
  return n
}

/// goalloc_pool_destroy: frees every object in the pool, then the pool (its mapping is kept for
/// the next pool, its locals' pages given back). Objects handed out stay the caller's. A pool
/// that is not live (destroyed already) is reported in one line and left alone.
public func poolDestroy(_ pool: UnsafeMutableRawPointer?) {
  guard let pool else { return }
  let p = pool.assumingMemoryBound(to: PoolHeader.self)
  guard let r = existingPoolRegistry, atomicLoad64(p.magic) == PoolHeader.liveMagic else {
    writeStatic(2, "goalloc: goalloc_pool_destroy: not a live pool (destroyed already?); ignored\n")
    return
  }
  lockAcquire(r.rotateLock)
  lockAcquire(r.lock)
  if let q = p.prev.pointee { q.next.pointee = p.next.pointee } else { r.head.pointee = p.next.pointee }
  if let n = p.next.pointee { n.prev.pointee = p.prev.pointee }
  atomicStore64(p.magic, 0)
  lockRelease(r.lock)
  var all = poolTakeAll(r, p)
  poolChainAppend(&all, PoolChain(top: p.victimTop.pointee, count: p.victimCount.pointee))
  p.victimTop.pointee = nil
  p.victimCount.pointee = 0
  for i in 0..<poolSlotLimit(r) {
    let l = poolLocalAt(p, i)
    if let s = l.spare.pointee { poolBlockFree(s) }
  }
  _ = poolDropChain(all)
  // The locals' pages back to the OS (they read as zero again); the header stays, dead.
  let locals = UnsafeMutableRawPointer(p) + 4096
  _ = goalloc_sys_release(locals, PoolHeader.mappingBytes - 4096)
  goalloc_memset(UnsafeMutableRawPointer(p) + PoolHeader.localsOffset, 0, 4096 - PoolHeader.localsOffset)
  lockAcquire(r.lock)
  p.next.pointee = r.free.pointee
  p.prev.pointee = nil
  r.free.pointee = p
  lockRelease(r.lock)
  lockRelease(r.rotateLock)
}

/// Whether `pool` is a live pool.
public func poolIsLive(_ pool: UnsafeMutableRawPointer) -> Bool {
  atomicLoad64(pool.assumingMemoryBound(to: PoolHeader.self).magic) == PoolHeader.liveMagic
}

/// What a pool holds and has done (goalloc_pool_stats). `pooled` and `victims` are read while
/// other threads may use the pool: exact only when none does.
public struct PoolStats {
  public var size: UInt64 = 0       // bytes per object
  public var pooled: UInt64 = 0     // objects in private slots and chains
  public var victims: UInt64 = 0    // objects in the victim chain
  public var created: UInt64 = 0    // objects made for the constructor
  public var dropped: UInt64 = 0    // objects freed by rotations and trims
  public var rotations: UInt64 = 0
  public init() {}
}

/// goalloc_pool_stats (zeros for nil or a pool that is not live).
public func poolStats(_ pool: UnsafeMutableRawPointer?) -> PoolStats {
  var s = PoolStats()
  guard let pool, let r = existingPoolRegistry, poolIsLive(pool) else { return s }
  let p = pool.assumingMemoryBound(to: PoolHeader.self)
  s.size = UInt64(p.size.pointee)
  for i in 0..<poolSlotLimit(r) {
    let l = poolLocalAt(p, i)
    s.pooled += UInt64(atomicLoadRelaxedUInt(l.count))
    if atomicLoadRelaxedUInt(l.privateObj) != 0 { s.pooled += 1 }
  }
  s.victims = UInt64(atomicLoadRelaxedUInt(p.victimCount))
  s.created = atomicLoad64(p.created)
  s.dropped = atomicLoad64(p.dropped)
  s.rotations = atomicLoad64(p.rotations)
  return s
}

// MARK: the heap's events

/// MHeap.poolEvents: what the tiers below report (PoolEvent, MHeap.swift).
func poolEvent(_ event: Int32, _ arg: UnsafeMutableRawPointer?) {
  guard let r = existingPoolRegistry else { return }
  switch event {
  case PoolEvent.collected:
    poolsRotate(times: 1)
  case PoolEvent.tick:
    poolTick(r, gcMode: globalHeap()?.gcExisting != nil)
  case PoolEvent.trim:
    poolsRotate(times: 2)
  case PoolEvent.cacheGone:
    guard let raw = arg else { return }
    let c = MCache(raw)
    let off = c.poolOffset
    c.poolOffset = 0
    let slot = off == 0 ? 0 : PoolHeader.slot(ofOffset: off < 0 ? -off : off)
    if slot == 0 { return }
    // The thread's private objects onto its chains, where others find them.
    lockAcquire(r.rotateLock)
    var it = r.head.pointee
    while let p = it {
      it = p.next.pointee
      let l = poolLocalAt(p, slot)
      lockAcquire(l.lock)
      let x = atomicLoadRelaxedUInt(l.privateObj)
      atomicStoreRelaxedUInt(l.privateObj, 0)
      var ok = true
      if x != 0 {
        var chain = PoolChain(top: l.top.pointee, count: l.count.pointee)
        ok = poolChainPush(&chain, UnsafeMutableRawPointer(bitPattern: x)!, spare: l.spare)
        l.top.pointee = chain.top
        atomicStoreRelaxedUInt(l.count, chain.count)
      }
      lockRelease(l.lock)
      if !ok { goFree(UnsafeMutableRawPointer(bitPattern: x)) }
    }
    lockRelease(r.rotateLock)
    lockAcquire(r.lock)
    r.slotBits.pointee[slot &>> 6] &= ~(1 << UInt64(slot & 63))
    lockRelease(r.lock)
  case PoolEvent.forkPrepare:
    lockAcquire(r.rotateLock)
    poolsForEachLock(r, .acquire)
    lockAcquire(r.lock)
  case PoolEvent.forkParent:
    lockRelease(r.lock)
    poolsForEachLock(r, .release)
    lockRelease(r.rotateLock)
  case PoolEvent.forkChild:
    // Only the forking thread exists here: every lock is free, the other threads' slots too.
    lockReset(r.lock)
    poolsForEachLock(r, .reset)  // (busy and revoke too)
    lockReset(r.rotateLock)
    lockReset(&poolInitLock)
    var mine = 0
    if let raw = existingThreadCache(), MCache(raw).poolOffset != 0 {
      mine = PoolHeader.slot(ofOffset: abs(MCache(raw).poolOffset))
    }
    for w in 0..<(PoolHeader.slots / 64) { r.slotBits.pointee[w] = 0 }
    r.slotBits.pointee[0] = 1
    if mine > 0 { r.slotBits.pointee[mine &>> 6] |= 1 << UInt64(mine & 63) }
  default:
    return
  }
}

/// A scavenger tick: without the GC mode, every `ticksPerRotation`-th rotates (the scavenger's
/// clock stands in for collections). Returns the objects freed.
@discardableResult
func poolTick(_ r: UnsafeMutablePointer<PoolRegistry>, gcMode: Bool) -> Int {
  if gcMode { return 0 }
  lockAcquire(r.rotateLock)
  r.ticks.pointee += 1
  let due = r.ticks.pointee % ticksPerRotation == 0
  lockRelease(r.rotateLock)
  return due ? poolsRotate(times: 1) : 0
}

enum PoolLockAction { case acquire, release, reset }

/// Every local's lock (slots below the limit) and every victim lock of every pool, in the lock
/// order (rotateLock held: no pool or slot appears meanwhile).
func poolsForEachLock(_ r: UnsafeMutablePointer<PoolRegistry>, _ action: PoolLockAction) {
  var it = r.head.pointee
  while let p = it {
    it = p.next.pointee
    for i in 0..<poolSlotLimit(r) {
      let l = poolLocalAt(p, i)
      poolLockDo(l.lock, action)
      if action == .reset {
        atomicStoreRelaxed32(l.busy, 0)
        atomicStoreRelaxed32(l.revoke, 0)
      }
    }
    poolLockDo(p.victimLock, action)
  }
}

@inline(__always) func poolLockDo(_ l: UnsafeMutablePointer<LockWord>, _ action: PoolLockAction) {
  switch action {
  case .acquire: lockAcquire(l)
  case .release: lockRelease(l)
  case .reset: lockReset(l)
  }
}

/// `ticks` scavenger ticks' pool steps as without the GC mode, for tests (a rotation every
/// `ticksPerRotation`); returns the objects freed.
package func _poolsTickForTesting(_ ticks: Int) -> Int {
  guard let r = existingPoolRegistry else { return 0 }
  var freed = 0
  for _ in 0..<ticks { freed += poolTick(r, gcMode: false) }
  return freed
}

/// The calling thread's slot in every pool (-1: none yet), for tests.
package func _poolSlotForTesting() -> Int {
  guard let raw = existingThreadCache(), MCache(raw).poolOffset != 0 else { return -1 }
  return PoolHeader.slot(ofOffset: abs(MCache(raw).poolOffset))
}

/// Whether threads that take a slot from now on get the fast paths (as when membarrier(2) is
/// refused: false), for tests; returns the old setting.
package func _poolSetFastPathsForTesting(_ on: Bool) -> Bool {
  guard let r = existingPoolRegistry else { return false }
  lockAcquire(r.rotateLock)
  defer { lockRelease(r.rotateLock) }
  let old = r.fastPaths.pointee
  r.fastPaths.pointee = on && r.membarrier.pointee
  return old
}

/// `times` rotations of every pool (as malloc_trim makes two), for tests; the objects freed.
package func _poolsRotateForTesting(times: Int) -> Int { poolsRotate(times: times) }
