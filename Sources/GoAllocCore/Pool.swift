// Pool: a free list of objects of one size for the program to reuse (Go's sync.Pool), with
// Go 1.13's victim rule so that a pool never pins memory across two collections.
//
// Layout (all of it in the pools' own mmap'd metadata, `PoolRegistry`; the objects themselves
// come from malloc of the pool's size, so dropping one is a plain free):
//   PoolHeader  the object size, the constructor, the victim chain, counters, and a directory
//               of 64 chunks of 64 `PoolLocal`s, one per thread slot (Go's per-P poolLocal).
//   PoolLocal   one cache line: a private object (one word, atomic) and a shared chain of
//               PoolBlocks (62 object pointers each) under the local's own lock; other threads
//               steal from it when their own local is empty.
//   slots       each thread that uses a pool gets a slot (1...4095) in MCacheHeader.poolSlot,
//               given back when its cache goes (thread exit); the next thread to take the slot
//               inherits that local's objects. Threads without a cache, or beyond 4095, share
//               slot 0: every local is safe to share, only slower.
// Get: the private object (one atomic exchange), else the local's chain, else a steal from
// another local, else the victim chain, else a fresh object (malloc of the size) given to the
// constructor, else NULL. Put: into the private slot (one compare-and-swap from 0), else onto the
// local's chain. Pointers only: an object's bytes are never written by the pool.
// Rotation (Go's poolCleanup, `poolsRotate`): every local's private object and chain move to the
// pool's victim chain, and the victim chain that was there is dropped (its objects freed). It
// runs after every collection of the GC mode, every `ticksPerRotation` scavenger ticks when the
// GC mode is not in use, and twice on malloc_trim / goalloc_release_free_memory (everything
// dropped). The heap calls in through `MHeap.poolEvents`, installed by the first pool, so the
// tiers below never name this one and the malloc/free fast paths are untouched.
//
// Invariants: an object is in at most one place (a private slot, one chain, or in a caller's
// hands): every move is an atomic exchange or happens under the lock of the chain it leaves;
// no pool lock is held while calling malloc, free or the constructor (so the pools' locks nest
// inside nothing of the heap's); lock order: rotateLock -> a local's lock -> a victim lock ->
// the registry lock; a pool is destroyed only under rotateLock, so a rotation never meets a
// half-destroyed pool.
import CGoAllocShim

/// The constructor of a pool's objects: called with a fresh object of the pool's size (not
/// zeroed) and the pool's argument.
public typealias PoolConstructor = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer?) -> Void

/// One thread slot's share of a pool: 64 bytes, one cache line.
struct PoolLocal {
  var privateObj: UInt = 0                     // atomic: an object or 0
  var lock: LockWord = 0
  var _pad0: UInt32 = 0
  var top: UnsafeMutableRawPointer? = nil      // the shared chain's newest block (lock)
  var count: UInt = 0                          // objects in the chain (lock; read relaxed as a hint)
  var spare: UnsafeMutableRawPointer? = nil    // an empty block kept for the next push (lock)
  var _pad1: (UInt64, UInt64, UInt64) = (0, 0, 0)
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

public struct PoolHeader {
  var _first: UInt64 = 0                       // no atomics at offset 0
  var size: Int = 0                            // bytes per object
  var ctor: PoolConstructor? = nil
  var arg: UnsafeMutableRawPointer? = nil
  var dir: UnsafeMutablePointer<UInt>          // [dirEntries] chunks of chunkLocals locals (atomic)
  var next: UnsafeMutablePointer<PoolHeader>? = nil   // the registry's list (registry lock)
  var prev: UnsafeMutablePointer<PoolHeader>? = nil
  var victimLock: LockWord = 0
  var victim = PoolChain()                     // victimLock; victim.count read relaxed as a hint
  var created: UInt64 = 0                      // atomics: objects from the constructor,
  var dropped: UInt64 = 0                      //   objects freed by rotations and trims,
  var rotations: UInt64 = 0                    //   rotations
  var magic: UInt64 = PoolHeader.liveMagic

  static let liveMagic: UInt64 = 0x676f_706f_6f6c_0001
  static let dirEntries = 64
  static let chunkLocals = 64
  static let slots = dirEntries * chunkLocals   // 4096; slot 0 is the shared one
}

/// Every pool of the process, and the metadata allocators they share. One mapping.
struct PoolRegistry {
  var _first: UInt64 = 0
  var lock: LockWord = 0                       // the list, the slots, the allocators
  var rotateLock: LockWord = 0                 // one rotation (or destroy, or fork) at a time
  var head: UnsafeMutablePointer<PoolHeader>? = nil
  var persistent = PersistentAlloc()
  var headers = FixAlloc(size: MemoryLayout<PoolHeader>.stride)
  var blocks = FixAlloc(size: PoolBlock.bytes)  // chain blocks and directories
  var chunks = FixAlloc(size: PoolHeader.chunkLocals * MemoryLayout<PoolLocal>.stride)
  var slotBits: UnsafeMutablePointer<UInt64>    // [slots / 64]: slots held by live threads
  var highSlot: UInt = 0                        // atomic: the highest slot ever handed out
  var ticks = 0                                 // scavenger ticks seen (rotateLock)
  var pools = 0                                 // live pools (lock)
}

/// Scavenger ticks (100 ms each) between two rotations when the GC mode is not in use.
let ticksPerRotation = 10

nonisolated(unsafe) var poolInitLock: LockWord = 0
nonisolated(unsafe) var poolRegistryWord: UInt = 0

/// The registry, created with the first pool (nil when the OS refuses memory).
func poolRegistry() -> UnsafeMutablePointer<PoolRegistry>? {
  if let r = UnsafeMutablePointer<PoolRegistry>(bitPattern: atomicLoadUInt(&poolRegistryWord)) { return r }
  guard let h = globalHeap() else { return nil }
  lockAcquire(&poolInitLock)
  defer { lockRelease(&poolInitLock) }
  if let r = UnsafeMutablePointer<PoolRegistry>(bitPattern: atomicLoadUInt(&poolRegistryWord)) { return r }
  let head = roundUp(MemoryLayout<PoolRegistry>.stride, 64)
  guard let mem = sysMap(head + PoolHeader.slots / 8) else { return nil }
  let r = mem.bindMemory(to: PoolRegistry.self, capacity: 1)
  r.initialize(to: PoolRegistry(slotBits: (mem + head).bindMemory(to: UInt64.self, capacity: PoolHeader.slots / 64)))
  r.pointee.slotBits[0] = 1  // slot 0: shared by threads without a slot of their own
  atomicStoreUInt(&poolRegistryWord, UInt(bitPattern: r))
  h.pointee.poolEvents = poolEvent
  return r
}

@inline(__always) var existingPoolRegistry: UnsafeMutablePointer<PoolRegistry>? {
  UnsafeMutablePointer<PoolRegistry>(bitPattern: atomicLoadUInt(&poolRegistryWord))
}

// MARK: the API's core (Exports.swift: goalloc_pool_*; GoAlloc.swift: Pool<T>)

/// goalloc_pool_create: a pool of objects of `size` bytes (0 counts as 1). nil with errno =
/// ENOMEM when memory runs out or the size cannot be allocated.
public func poolCreate(size: Int, constructor: PoolConstructor?, arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  if size < 0 || size > maxAllocSize { return enomem() }
  guard let r = poolRegistry() else { return enomem() }
  lockAcquire(&r.pointee.rotateLock)  // (the list changes only under rotateLock and the lock)
  lockAcquire(&r.pointee.lock)
  defer {
    lockRelease(&r.pointee.lock)
    lockRelease(&r.pointee.rotateLock)
  }
  guard let hm = r.pointee.headers.alloc(&r.pointee.persistent) else { return enomem() }
  guard let dm = r.pointee.blocks.alloc(&r.pointee.persistent) else {
    r.pointee.headers.free(hm)
    return enomem()
  }
  let p = hm.bindMemory(to: PoolHeader.self, capacity: 1)
  p.initialize(to: PoolHeader(size: max(size, 1), ctor: constructor, arg: arg,
                              dir: dm.bindMemory(to: UInt.self, capacity: PoolHeader.dirEntries)))
  p.pointee.next = r.pointee.head
  if let n = r.pointee.head { n.pointee.prev = p }
  r.pointee.head = p
  r.pointee.pools += 1
  return UnsafeMutableRawPointer(p)
}

/// goalloc_pool_get: an object of the pool (see the file's header for the order), a new one
/// from the constructor, or nil (an empty pool without a constructor; out of memory).
@inline(__always)
public func poolGet(_ pool: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  guard let pool else { return nil }
  let p = pool.assumingMemoryBound(to: PoolHeader.self)
  if let raw = goalloc_tls_get() {
    let slot = MCache(raw).header.pointee.poolSlot
    if let l = poolLocalIfAny(p, slot) {
      let x = atomicExchangeUInt(&l.pointee.privateObj, 0)
      if x != 0 { return UnsafeMutableRawPointer(bitPattern: x) }
    }
  }
  return poolGetSlow(p)
}

/// goalloc_pool_put: `obj` back into the pool (nil: nothing).
@inline(__always)
public func poolPut(_ pool: UnsafeMutableRawPointer?, _ obj: UnsafeMutableRawPointer?) {
  guard let pool, let obj else { return }
  let p = pool.assumingMemoryBound(to: PoolHeader.self)
  if let raw = goalloc_tls_get() {
    let slot = MCache(raw).header.pointee.poolSlot
    if let l = poolLocalIfAny(p, slot) {
      if atomicCASUInt(&l.pointee.privateObj, 0, UInt(bitPattern: obj)) { return }
      poolPushShared(l, obj)
      return
    }
  }
  poolPutSlow(p, obj)
}

/// The local of `slot` in pool p if the thread has a slot of its own (> 0) and the slot's
/// chunk exists.
@inline(__always)
func poolLocalIfAny(_ p: UnsafeMutablePointer<PoolHeader>, _ slot: Int) -> UnsafeMutablePointer<PoolLocal>? {
  if slot <= 0 { return nil }
  return poolLocalAt(p, slot)
}

/// The local of slot i (0...4095) in pool p, if its chunk exists.
@inline(__always)
func poolLocalAt(_ p: UnsafeMutablePointer<PoolHeader>, _ i: Int) -> UnsafeMutablePointer<PoolLocal>? {
  let chunk = atomicLoadUInt(p.pointee.dir + (i &>> 6))
  if chunk == 0 { return nil }
  return UnsafeMutablePointer<PoolLocal>(bitPattern: chunk)! + (i & (PoolHeader.chunkLocals - 1))
}

/// One past the highest slot any thread has had: the locals a scan of a pool visits.
@inline(__always)
func poolSlotLimit(_ r: UnsafeMutablePointer<PoolRegistry>) -> Int { Int(atomicLoadUInt(&r.pointee.highSlot)) + 1 }

/// The calling thread's slot (taken now if it has none) and its local in pool p (the chunk made
/// now if needed). MCacheHeader.poolSlot: 0 none yet, -1 the shared slot 0, else the slot.
/// Threads without a cache of their own (past their exit flush, the scavenger) use slot 0.
/// nil only when out of memory.
func poolLocalOfThread(_ p: UnsafeMutablePointer<PoolHeader>) -> (local: UnsafeMutablePointer<PoolLocal>, slot: Int)? {
  guard let r = existingPoolRegistry else { return nil }
  var slot = 0
  var cache: MCache? = nil
  if let raw = existingThreadCache() { cache = MCache(raw) } else if goalloc_tls_state_get() == 0 { cache = currentCache() }
  if let c = cache {
    slot = c.header.pointee.poolSlot
    if slot == 0 {
      slot = poolTakeSlot(r)
      c.header.pointee.poolSlot = slot == 0 ? -1 : slot
    }
    if slot < 0 { slot = 0 }
  }
  if let l = poolLocalAt(p, slot) { return (l, slot) }
  // A new chunk of locals: under rotateLock too, so that fork's prepare (which holds it) sees
  // every chunk there is.
  let entry = p.pointee.dir + (slot &>> 6)
  lockAcquire(&r.pointee.rotateLock)
  lockAcquire(&r.pointee.lock)
  if atomicLoadUInt(entry) == 0, let m = r.pointee.chunks.alloc(&r.pointee.persistent) {
    atomicStoreUInt(entry, UInt(bitPattern: m))  // zeroed: 64 empty locals
  }
  lockRelease(&r.pointee.lock)
  lockRelease(&r.pointee.rotateLock)
  guard let l = poolLocalAt(p, slot) else { return nil }
  return (l, slot)
}

/// A free slot (1...4095), or 0 when all are taken.
func poolTakeSlot(_ r: UnsafeMutablePointer<PoolRegistry>) -> Int {
  lockAcquire(&r.pointee.lock)
  defer { lockRelease(&r.pointee.lock) }
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
func poolGetSlow(_ p: UnsafeMutablePointer<PoolHeader>) -> UnsafeMutableRawPointer? {
  guard let r = existingPoolRegistry, let mine = poolLocalOfThread(p) else { return poolNew(p) }
  let own = mine.local, slot = mine.slot
  // (The fast path did not look here when this thread had no slot or no chunk yet.)
  let x = atomicExchangeUInt(&own.pointee.privateObj, 0)
  if x != 0 { return UnsafeMutableRawPointer(bitPattern: x) }
  if let x = poolPopShared(own) { return x }
  // Steal: every other local, starting after this one (Go's order); a local with an empty
  // chain may still hold a private object.
  let limit = poolSlotLimit(r)
  var i = 1
  while i < limit {
    let s = (slot + i) % limit
    i += 1
    guard let l = poolLocalAt(p, s) else { continue }
    if let x = poolPopShared(l) { return x }
    if atomicLoadRelaxedUInt(&l.pointee.privateObj) != 0 {
      let x = atomicExchangeUInt(&l.pointee.privateObj, 0)
      if x != 0 { return UnsafeMutableRawPointer(bitPattern: x) }
    }
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
  guard let obj = poolAllocate(p) else { return nil }
  ctor(obj, p.pointee.arg)
  atomicAdd64(&p.pointee.created, 1)
  return obj
}

/// malloc of the pool's size (malloc mode: 16-byte aligned from 16 B up). Not zeroed.
public func poolAllocate(_ pool: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
  goMalloc(pool.assumingMemoryBound(to: PoolHeader.self).pointee.size, noscan: true, mallocMode: true)
}

/// The object size of a pool.
public func poolObjectSize(_ pool: UnsafeMutableRawPointer) -> Int {
  pool.assumingMemoryBound(to: PoolHeader.self).pointee.size
}

@inline(never)
func poolPutSlow(_ p: UnsafeMutablePointer<PoolHeader>, _ obj: UnsafeMutableRawPointer) {
  guard let l = poolLocalOfThread(p)?.local else {
    goFree(obj)  // no memory for the pool's metadata: the object goes back to the heap
    return
  }
  if atomicCASUInt(&l.pointee.privateObj, 0, UInt(bitPattern: obj)) { return }
  poolPushShared(l, obj)
}

/// Pushes obj onto l's chain (a new block when the newest is full; without memory for one,
/// obj is freed).
@inline(never)
func poolPushShared(_ l: UnsafeMutablePointer<PoolLocal>, _ obj: UnsafeMutableRawPointer) {
  lockAcquire(&l.pointee.lock)
  var chain = PoolChain(top: l.pointee.top, count: l.pointee.count)
  let ok = poolChainPush(&chain, obj, spare: &l.pointee.spare)
  l.pointee.top = chain.top
  atomicStoreRelaxedUInt(&l.pointee.count, chain.count)
  lockRelease(&l.pointee.lock)
  if !ok { goFree(obj) }
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
/// victim chain they replace is dropped (its objects freed once the pool's locks are let go).
/// `times` rotations in a row (2: everything dropped). Returns the objects freed.
@discardableResult
func poolsRotate(times: Int) -> Int {
  guard let r = existingPoolRegistry else { return 0 }
  var freed = 0
  lockAcquire(&r.pointee.rotateLock)
  for _ in 0..<times {
    // The list changes only under rotateLock (create, destroy).
    var it = r.pointee.head
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
/// block for it is freed: nothing is lost).
func poolTakeAll(_ r: UnsafeMutablePointer<PoolRegistry>, _ p: UnsafeMutablePointer<PoolHeader>) -> PoolChain {
  var moved = PoolChain()
  let limit = poolSlotLimit(r)
  for i in 0..<limit {
    guard let l = poolLocalAt(p, i) else { continue }
    if atomicLoadRelaxedUInt(&l.pointee.count) != 0 {
      lockAcquire(&l.pointee.lock)
      let taken = PoolChain(top: l.pointee.top, count: l.pointee.count)
      l.pointee.top = nil
      atomicStoreRelaxedUInt(&l.pointee.count, 0)
      lockRelease(&l.pointee.lock)
      poolChainAppend(&moved, taken)
    }
    let x = atomicExchangeUInt(&l.pointee.privateObj, 0)
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

/// goalloc_pool_destroy: frees every object in the pool, then the pool. Objects handed out stay
/// the caller's (free them with free()). A pool that is not live (destroyed already) is
/// reported in one line and left alone.
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
  r.pointee.pools -= 1
  atomicStore64(&p.pointee.magic, 0)
  lockRelease(&r.pointee.lock)
  var all = poolTakeAll(r, p)
  poolChainAppend(&all, PoolChain(top: p.pointee.victim.top, count: p.pointee.victim.count))
  p.pointee.victim = PoolChain()
  lockRelease(&r.pointee.rotateLock)
  _ = poolDropChain(all)
  lockAcquire(&r.pointee.lock)
  for d in 0..<PoolHeader.dirEntries {
    guard let chunk = UnsafeMutablePointer<PoolLocal>(bitPattern: atomicLoadUInt(p.pointee.dir + d)) else { continue }
    for i in 0..<PoolHeader.chunkLocals {
      if let s = chunk[i].spare { r.pointee.blocks.free(s) }
    }
    r.pointee.chunks.free(UnsafeMutableRawPointer(chunk))
  }
  r.pointee.blocks.free(UnsafeMutableRawPointer(p.pointee.dir))
  r.pointee.headers.free(UnsafeMutableRawPointer(p))
  lockRelease(&r.pointee.lock)
}

/// Whether `pool` is a live pool (tests; the C API's debug checks).
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

public func poolStats(_ pool: UnsafeMutableRawPointer?) -> PoolStats {
  var s = PoolStats()
  guard let pool, let r = existingPoolRegistry else { return s }
  let p = pool.assumingMemoryBound(to: PoolHeader.self)
  s.size = UInt64(p.pointee.size)
  let limit = poolSlotLimit(r)
  for i in 0..<limit {
    guard let l = poolLocalAt(p, i) else { continue }
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
    let slot = c.header.pointee.poolSlot
    c.header.pointee.poolSlot = 0
    if slot <= 0 { return }
    lockAcquire(&r.pointee.lock)
    r.pointee.slotBits[slot &>> 6] &= ~(1 << UInt64(slot & 63))
    lockRelease(&r.pointee.lock)
  case PoolEvent.forkPrepare:
    poolsLockAll(r)
  case PoolEvent.forkParent:
    lockRelease(&r.pointee.lock)
    poolsForEachLock(r, .release)
    lockRelease(&r.pointee.rotateLock)
  case PoolEvent.forkChild:
    // Only the forking thread exists here: every lock is free, the other threads' slots too.
    lockReset(&r.pointee.lock)
    poolsForEachLock(r, .reset)
    lockReset(&r.pointee.rotateLock)
    lockReset(&poolInitLock)
    var mine = 0
    if let raw = existingThreadCache() { mine = MCache(raw).header.pointee.poolSlot }
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

/// fork's prepare: rotateLock (no pool or chunk of locals appears or goes while it is held),
/// every lock of every local and every victim lock, then the registry lock (the lock order).
func poolsLockAll(_ r: UnsafeMutablePointer<PoolRegistry>) {
  lockAcquire(&r.pointee.rotateLock)
  poolsForEachLock(r, .acquire)
  lockAcquire(&r.pointee.lock)
}

enum PoolLockAction { case acquire, release, reset }

/// Every local's lock (of every chunk) and every victim lock of every pool (rotateLock held).
func poolsForEachLock(_ r: UnsafeMutablePointer<PoolRegistry>, _ action: PoolLockAction) {
  var it = r.pointee.head
  while let p = it {
    it = p.pointee.next
    for d in 0..<PoolHeader.dirEntries {
      guard let chunk = UnsafeMutablePointer<PoolLocal>(bitPattern: atomicLoadUInt(p.pointee.dir + d)) else { continue }
      for i in 0..<PoolHeader.chunkLocals { poolLockDo(&chunk[i].lock, action) }
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

/// Rotations as the scavenger's tick and malloc_trim make them, for tests: `times` rotations
/// of every pool; returns the objects freed.
package func _poolsRotateForTesting(times: Int) -> Int { poolsRotate(times: times) }

/// `ticks` scavenger ticks' pool steps as without the GC mode, for tests (a rotation every
/// `ticksPerRotation`); returns the objects freed.
package func _poolsTickForTesting(_ ticks: Int) -> Int {
  guard let r = existingPoolRegistry else { return 0 }
  var freed = 0
  for _ in 0..<ticks { freed += poolTick(r, gcMode: false) }
  return freed
}

/// The thread's slot in every pool (0: none yet; -1: the shared one), for tests.
package func _poolSlotForTesting() -> Int {
  guard let raw = existingThreadCache() else { return 0 }
  return MCache(raw).header.pointee.poolSlot
}
