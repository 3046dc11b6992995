// Pool: objects of one size kept for the program to reuse (Go's sync.Pool), with Go 1.13's
// victim rule so that a pool never pins memory across two collections.
//
// Layout: each pool is one mapping of its own (reused after a pool is destroyed, so a stale
// handle reads a dead header rather than unmapped memory): a 128-byte PoolHeader (the object
// size, the constructor, the victim chain, counters), then `PoolHeader.slots` PoolLocals of one
// cache line each, one per thread slot (Go's per-P poolLocal; untouched locals cost no RSS).
// The objects come from malloc of the pool's size, so dropping one is a plain free; the chains'
// blocks come from the registry's FixAlloc.
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
  var persistent = PersistentAlloc()
  var blocks = FixAlloc(size: PoolBlock.bytes)
  var slotBits: UnsafeMutablePointer<UInt64>    // [slots / 64]: slots held by live threads
  var highSlot: UInt = 0                        // atomic: the highest slot ever handed out
  var membarrier = false                        // membarrier(2) is registered (rotations use it)
  var fastPaths = false                         // threads get fast paths (= membarrier; tests change it)
  var ticks = 0                                 // scavenger ticks seen (rotateLock)
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
  r.pointee.slotBits[0] = 1  // slot 0: shared by threads without a slot of their own
  r.pointee.membarrier = goalloc_membarrier_register() == 0
  r.pointee.fastPaths = r.pointee.membarrier
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
func poolSlotLimit(_ r: UnsafeMutablePointer<PoolRegistry>) -> Int { Int(atomicLoadUInt(&r.pointee.highSlot)) + 1 }

// MARK: the API's core (Exports.swift: goalloc_pool_*; GoAlloc's Pool<T>)

/// goalloc_pool_create: a pool of objects of `size` bytes (0 counts as 1). nil with errno =
/// ENOMEM when memory runs out or the size cannot be allocated.
public func poolCreate(size: Int, constructor: PoolConstructor?, arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  if size < 0 || size > maxAllocSize { return enomem() }
  guard let r = poolRegistry() else { return enomem() }
  lockAcquire(&r.pointee.rotateLock)
  defer { lockRelease(&r.pointee.rotateLock) }
  lockAcquire(&r.pointee.lock)
  var p = r.pointee.free
  if let f = p { r.pointee.free = f.pointee.next }
  lockRelease(&r.pointee.lock)
  if p == nil {
    guard let m = sysMap(PoolHeader.mappingBytes) else { return enomem() }
    p = m.bindMemory(to: PoolHeader.self, capacity: 1)
  }
  let pool = p!
  pool.initialize(to: PoolHeader(size: max(size, 1), ctor: constructor, arg: arg))
  lockAcquire(&r.pointee.lock)
  pool.pointee.next = r.pointee.head
  if let n = r.pointee.head { n.pointee.prev = pool }
  r.pointee.head = pool
  lockRelease(&r.pointee.lock)
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
      if s == 0 || !r.pointee.fastPaths { off = -off }
      c.poolOffset = off
    }
    slot = PoolHeader.slot(ofOffset: off < 0 ? -off : off)
  }
  return (poolLocalAt(p, slot), slot)
}

/// A free slot (1...4095), or 0 (shared) when all are taken.
func poolTakeSlot(_ r: UnsafeMutablePointer<PoolRegistry>) -> Int {
  lockAcquire(&r.pointee.rotateLock)
  lockAcquire(&r.pointee.lock)
  defer {
    lockRelease(&r.pointee.lock)
    lockRelease(&r.pointee.rotateLock)
  }
  for w in 0..<(PoolHeader.slots / 64) where r.pointee.slotBits[w] != ~0 {
    let b = (~r.pointee.slotBits[w]).trailingZeroBitCount
    r.pointee.slotBits[w] |= 1 << UInt64(b)
    let slot = w * 64 + b
    if UInt(slot) > atomicLoadUInt(&r.pointee.highSlot) { atomicStoreUInt(&r.pointee.highSlot, UInt(slot)) }
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
  lockAcquire(&own.pointee.lock)
  var x = atomicLoadRelaxedUInt(&own.pointee.privateObj)
  if x != 0 {
    atomicStoreRelaxedUInt(&own.pointee.privateObj, 0)
  } else {
    var chain = PoolChain(top: own.pointee.top, count: own.pointee.count)
    x = UInt(bitPattern: poolChainPop(&chain, spare: &own.pointee.spare))
    own.pointee.top = chain.top
    atomicStoreRelaxedUInt(&own.pointee.count, chain.count)
  }
  lockRelease(&own.pointee.lock)
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
  if atomicLoadRelaxedUInt(&p.pointee.victim.count) != 0 {
    lockAcquire(&p.pointee.victimLock)
    var chain = PoolChain(top: p.pointee.victim.top, count: p.pointee.victim.count)
    let x = poolChainPop(&chain, spare: nil)
    p.pointee.victim.top = chain.top
    atomicStoreRelaxedUInt(&p.pointee.victim.count, chain.count)
    lockRelease(&p.pointee.victimLock)
    if let x { return x }
  }
  return poolNew(p)
}

/// A fresh object for the constructor, or nil without one.
func poolNew(_ p: UnsafeMutablePointer<PoolHeader>) -> UnsafeMutableRawPointer? {
  guard let ctor = p.pointee.ctor else { return nil }
  guard let obj = poolAllocate(UnsafeMutableRawPointer(p)) else { return nil }
  ctor(obj, p.pointee.arg)
  atomicAdd64(&p.pointee.created, 1)
  return obj
}

/// malloc of the pool's size (malloc mode: 16-byte aligned from 16 B up). Not zeroed.
public func poolAllocate(_ pool: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
  goMalloc(pool.assumingMemoryBound(to: PoolHeader.self).pointee.size, noscan: true, mallocMode: true)
}

/// Put past the fast path: under the local's lock, into the private slot if it is empty, else
/// onto the chain. Returns false (the fast path did not take it).
@inline(never)
func poolPutSlow(_ pool: UnsafeMutableRawPointer?, _ obj: UnsafeMutableRawPointer?) -> Bool {
  guard let pool, let obj, existingPoolRegistry != nil else { return false }
  let (l, _) = poolLocalOfThread(pool.assumingMemoryBound(to: PoolHeader.self))
  lockAcquire(&l.pointee.lock)
  if atomicLoadRelaxedUInt(&l.pointee.privateObj) == 0 {
    atomicStoreRelaxedUInt(&l.pointee.privateObj, UInt(bitPattern: obj))
    lockRelease(&l.pointee.lock)
    return false
  }
  var chain = PoolChain(top: l.pointee.top, count: l.pointee.count)
  let ok = poolChainPush(&chain, obj, spare: &l.pointee.spare)
  l.pointee.top = chain.top
  atomicStoreRelaxedUInt(&l.pointee.count, chain.count)
  lockRelease(&l.pointee.lock)
  if !ok { goFree(obj) }  // no memory for a block: the object goes back to the heap
  return false
}

/// The newest object of l's chain, or nil.
func poolPopShared(_ l: UnsafeMutablePointer<PoolLocal>) -> UnsafeMutableRawPointer? {
  if atomicLoadRelaxedUInt(&l.pointee.count) == 0 { return nil }
  lockAcquire(&l.pointee.lock)
  var chain = PoolChain(top: l.pointee.top, count: l.pointee.count)
  let x = poolChainPop(&chain, spare: &l.pointee.spare)
  l.pointee.top = chain.top
  atomicStoreRelaxedUInt(&l.pointee.count, chain.count)
  lockRelease(&l.pointee.lock)
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
  lockAcquire(&r.pointee.lock)
  let b = r.pointee.blocks.alloc(&r.pointee.persistent)
  lockRelease(&r.pointee.lock)
  return b
}

func poolBlockFree(_ b: UnsafeMutableRawPointer) {
  guard let r = existingPoolRegistry else { return }
  lockAcquire(&r.pointee.lock)
  r.pointee.blocks.free(b)
  lockRelease(&r.pointee.lock)
}

// MARK: rotation and trimming

/// Go's poolCleanup for every pool: each local's objects move to its pool's victim chain; the
/// victim chain they replace is dropped (its objects freed, with no pool lock held but
/// rotateLock). `times` rotations in a row (2: everything dropped). Returns the objects freed.
@discardableResult
func poolsRotate(times: Int) -> Int {
  guard let r = existingPoolRegistry else { return 0 }
  var freed = 0
  lockAcquire(&r.pointee.rotateLock)
  for _ in 0..<times {
    var it = r.pointee.head  // (the list changes only under rotateLock)
    while let p = it {
      it = p.pointee.next
      let moved = poolTakeAll(r, p)
      lockAcquire(&p.pointee.victimLock)
      let old = PoolChain(top: p.pointee.victim.top, count: p.pointee.victim.count)
      p.pointee.victim.top = moved.top
      atomicStoreRelaxedUInt(&p.pointee.victim.count, moved.count)
      lockRelease(&p.pointee.victimLock)
      atomicAdd64(&p.pointee.rotations, 1)
      let n = poolDropChain(old)
      atomicAdd64(&p.pointee.dropped, UInt64(n))
      freed += n
    }
  }
  lockRelease(&r.pointee.rotateLock)
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
    lockAcquire(&l.pointee.lock)
    atomicStoreRelaxed32(&l.pointee.revoke, 1)
  }
  if r.pointee.membarrier && goalloc_membarrier() != 0 {
    // (Registered, so it cannot fail; if it did, a full fence on this side alone would not do.)
    fatal("goalloc_pool", "membarrier failed after it was registered")
  }
  for i in 0..<limit {
    let l = poolLocalAt(p, i)
    while atomicLoad32(&l.pointee.busy) != 0 { goalloc_yield() }
    let taken = PoolChain(top: l.pointee.top, count: l.pointee.count)
    l.pointee.top = nil
    atomicStoreRelaxedUInt(&l.pointee.count, 0)
    let x = atomicLoadRelaxedUInt(&l.pointee.privateObj)
    atomicStoreRelaxedUInt(&l.pointee.privateObj, 0)
    atomicStore32(&l.pointee.revoke, 0)
    lockRelease(&l.pointee.lock)
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
  guard let r = existingPoolRegistry, atomicLoad64(&p.pointee.magic) == PoolHeader.liveMagic else {
    writeStatic(2, "goalloc: goalloc_pool_destroy: not a live pool (destroyed already?); ignored\n")
    return
  }
  lockAcquire(&r.pointee.rotateLock)
  lockAcquire(&r.pointee.lock)
  if let q = p.pointee.prev { q.pointee.next = p.pointee.next } else { r.pointee.head = p.pointee.next }
  if let n = p.pointee.next { n.pointee.prev = p.pointee.prev }
  atomicStore64(&p.pointee.magic, 0)
  lockRelease(&r.pointee.lock)
  var all = poolTakeAll(r, p)
  poolChainAppend(&all, PoolChain(top: p.pointee.victim.top, count: p.pointee.victim.count))
  p.pointee.victim = PoolChain()
  for i in 0..<poolSlotLimit(r) {
    let l = poolLocalAt(p, i)
    if let s = l.pointee.spare { poolBlockFree(s) }
  }
  _ = poolDropChain(all)
  // The locals' pages back to the OS (they read as zero again); the header stays, dead.
  let locals = UnsafeMutableRawPointer(p) + 4096
  _ = goalloc_sys_release(locals, PoolHeader.mappingBytes - 4096)
  goalloc_memset(UnsafeMutableRawPointer(p) + PoolHeader.localsOffset, 0, 4096 - PoolHeader.localsOffset)
  lockAcquire(&r.pointee.lock)
  p.pointee.next = r.pointee.free
  p.pointee.prev = nil
  r.pointee.free = p
  lockRelease(&r.pointee.lock)
  lockRelease(&r.pointee.rotateLock)
}

/// Whether `pool` is a live pool.
public func poolIsLive(_ pool: UnsafeMutableRawPointer) -> Bool {
  atomicLoad64(&pool.assumingMemoryBound(to: PoolHeader.self).pointee.magic) == PoolHeader.liveMagic
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
  s.size = UInt64(p.pointee.size)
  for i in 0..<poolSlotLimit(r) {
    let l = poolLocalAt(p, i)
    s.pooled += UInt64(atomicLoadRelaxedUInt(&l.pointee.count))
    if atomicLoadRelaxedUInt(&l.pointee.privateObj) != 0 { s.pooled += 1 }
  }
  s.victims = UInt64(atomicLoadRelaxedUInt(&p.pointee.victim.count))
  s.created = atomicLoad64(&p.pointee.created)
  s.dropped = atomicLoad64(&p.pointee.dropped)
  s.rotations = atomicLoad64(&p.pointee.rotations)
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
    lockAcquire(&r.pointee.rotateLock)
    var it = r.pointee.head
    while let p = it {
      it = p.pointee.next
      let l = poolLocalAt(p, slot)
      lockAcquire(&l.pointee.lock)
      let x = atomicLoadRelaxedUInt(&l.pointee.privateObj)
      atomicStoreRelaxedUInt(&l.pointee.privateObj, 0)
      var ok = true
      if x != 0 {
        var chain = PoolChain(top: l.pointee.top, count: l.pointee.count)
        ok = poolChainPush(&chain, UnsafeMutableRawPointer(bitPattern: x)!, spare: &l.pointee.spare)
        l.pointee.top = chain.top
        atomicStoreRelaxedUInt(&l.pointee.count, chain.count)
      }
      lockRelease(&l.pointee.lock)
      if !ok { goFree(UnsafeMutableRawPointer(bitPattern: x)) }
    }
    lockRelease(&r.pointee.rotateLock)
    lockAcquire(&r.pointee.lock)
    r.pointee.slotBits[slot &>> 6] &= ~(1 << UInt64(slot & 63))
    lockRelease(&r.pointee.lock)
  case PoolEvent.forkPrepare:
    lockAcquire(&r.pointee.rotateLock)
    poolsForEachLock(r, .acquire)
    lockAcquire(&r.pointee.lock)
  case PoolEvent.forkParent:
    lockRelease(&r.pointee.lock)
    poolsForEachLock(r, .release)
    lockRelease(&r.pointee.rotateLock)
  case PoolEvent.forkChild:
    // Only the forking thread exists here: every lock is free, the other threads' slots too.
    lockReset(&r.pointee.lock)
    poolsForEachLock(r, .reset)  // (busy and revoke too)
    lockReset(&r.pointee.rotateLock)
    lockReset(&poolInitLock)
    var mine = 0
    if let raw = existingThreadCache(), MCache(raw).poolOffset != 0 {
      mine = PoolHeader.slot(ofOffset: abs(MCache(raw).poolOffset))
    }
    for w in 0..<(PoolHeader.slots / 64) { r.pointee.slotBits[w] = 0 }
    r.pointee.slotBits[0] = 1
    if mine > 0 { r.pointee.slotBits[mine &>> 6] |= 1 << UInt64(mine & 63) }
  default:
    return
  }
}

/// A scavenger tick: without the GC mode, every `ticksPerRotation`-th rotates (the scavenger's
/// clock stands in for collections). Returns the objects freed.
@discardableResult
func poolTick(_ r: UnsafeMutablePointer<PoolRegistry>, gcMode: Bool) -> Int {
  if gcMode { return 0 }
  lockAcquire(&r.pointee.rotateLock)
  r.pointee.ticks += 1
  let due = r.pointee.ticks % ticksPerRotation == 0
  lockRelease(&r.pointee.rotateLock)
  return due ? poolsRotate(times: 1) : 0
}

enum PoolLockAction { case acquire, release, reset }

/// Every local's lock (slots below the limit) and every victim lock of every pool, in the lock
/// order (rotateLock held: no pool or slot appears meanwhile).
func poolsForEachLock(_ r: UnsafeMutablePointer<PoolRegistry>, _ action: PoolLockAction) {
  var it = r.pointee.head
  while let p = it {
    it = p.pointee.next
    for i in 0..<poolSlotLimit(r) {
      let l = poolLocalAt(p, i)
      poolLockDo(&l.pointee.lock, action)
      if action == .reset {
        atomicStoreRelaxed32(&l.pointee.busy, 0)
        atomicStoreRelaxed32(&l.pointee.revoke, 0)
      }
    }
    poolLockDo(&p.pointee.victimLock, action)
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
  lockAcquire(&r.pointee.rotateLock)
  defer { lockRelease(&r.pointee.rotateLock) }
  let old = r.pointee.fastPaths
  r.pointee.fastPaths = on && r.pointee.membarrier
  return old
}

/// `times` rotations of every pool (as malloc_trim makes two), for tests; the objects freed.
package func _poolsRotateForTesting(times: Int) -> Int { poolsRotate(times: times) }
