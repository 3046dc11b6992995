// MGCWork: the mark's work queues and how mark workers share them (Go's mgcwork.go: a gcWork per
// worker, the global full list, and getfull's termination).
//
// A `GCQueue` holds grey work: spans to scan (Green Tea: a first-in first-out ring, so marks
// gather in a span while it waits) or, in the object-queue mode (`gcobjqueue=1`), objects (a
// stack in the same memory); and pieces of large objects (a stack of [lo, hi) pairs). Every
// queue is fixed memory in the GC state's mapping: the mark never allocates.
// With one worker (`GOALLOC_GC_PROCS=1`) that worker's queue *is* the global queue (its whole
// capacity, no lock, plain bit operations): stage 1's single-threaded mark. With n workers each
// has a small local queue; a full local queue moves half its work to the global one, an empty
// one takes a batch from it, and a worker with work to spare gives half of it away whenever
// another worker is idle and the global queue is empty (Go's balance). The global queue is
// guarded by `lock`; `globalCount` mirrors its size for lock-free peeking.
// Termination: a worker that finds its local queue and the global queue empty (under the lock)
// becomes idle (`nwait` + 1, under the lock); an idle worker leaves idleness only by taking work
// from the global queue under the lock. Idle workers hold no work and push none. A mark assist
// (MGCAssist) takes work from the global queue and gives back what it has left, both under the
// lock, counted meanwhile in `assistHolders`. So when every worker is idle, no assist holds work
// and the global queue is empty (all three read under the lock: `markIsDone`), no work is left
// anywhere, and it stays so: the mark is done. A push that finds both its local and the global
// queue full sets `overflow`: the object stays marked and unscanned, and the recovery (MGCMark)
// finds it after the workers stop.
// A concurrent mark (prepare's `concurrent`) is shared with the program's mark assists and write
// barrier (MGCAssist, MGCBarrier): its workers use the parallel protocol even when there is one of them (atomic mark bits, a local queue and the
// locked global one), and the barrier greys through one more marker (`barrierMarker`, after the
// workers', under `wbLock`) whose queue it empties into the global one at once.
import CGoAllocShim

/// One queue of mark work (a worker's local queue, or the global one).
struct GCQueue {
  var items: UnsafeMutablePointer<UInt>   // spans (ring) or objects (stack)
  var chunks: UnsafeMutablePointer<UInt>  // [lo, hi) pairs (stack)
  var itemLimit: Int
  var chunkLimit: Int
  var head = 0
  var count = 0
  var chunkCount = 0

  init(items: UnsafeMutablePointer<UInt>, chunks: UnsafeMutablePointer<UInt>, itemLimit: Int, chunkLimit: Int) {
    self.items = items
    self.chunks = chunks
    self.itemLimit = itemLimit
    self.chunkLimit = chunkLimit
  }
  var isEmpty: Bool { count == 0 && chunkCount == 0 }
  var size: Int { count + chunkCount }
}

extension UnsafeMutablePointer where Pointee == GCQueue {
  func reset() {
    pointee.head = 0
    pointee.count = 0
    pointee.chunkCount = 0
  }
  /// Appends a span (ring) or object (stack: the same end); false when full.
  @inline(__always) func pushItem(_ x: UInt) -> Bool {
    let n = pointee.count, lim = pointee.itemLimit
    if n == lim { return false }
    var i = pointee.head &+ n
    if i >= lim { i &-= lim }
    pointee.items[i] = x
    pointee.count = n &+ 1
    return true
  }
  /// The oldest item (spans: first in, first out). Not empty. An emptied ring starts over at
  /// its first slot, so it touches only as many pages as it ever held items at once.
  @inline(__always) func popFirst() -> UInt {
    let x = pointee.items[pointee.head]
    var h = pointee.head &+ 1
    if h == pointee.itemLimit { h = 0 }
    let n = pointee.count &- 1
    pointee.head = n == 0 ? 0 : h
    pointee.count = n
    return x
  }
  /// The newest item (objects: last in, first out). Not empty.
  @inline(__always) func popLast() -> UInt {
    let n = pointee.count &- 1
    var i = pointee.head &+ n
    if i >= pointee.itemLimit { i &-= pointee.itemLimit }
    pointee.count = n
    return pointee.items[i]
  }
  @inline(__always) func chunkRoom(_ n: Int) -> Bool { pointee.chunkCount &+ n <= pointee.chunkLimit }
  /// Pushes [lo, hi); the caller checked chunkRoom.
  @inline(__always) func pushChunk(_ lo: UInt, _ hi: UInt) {
    let n = pointee.chunkCount
    pointee.chunks[2 &* n] = lo
    pointee.chunks[2 &* n &+ 1] = hi
    pointee.chunkCount = n &+ 1
  }
  @inline(__always) func popChunk() -> (UInt, UInt) {
    let n = pointee.chunkCount &- 1
    pointee.chunkCount = n
    return (pointee.chunks[2 &* n], pointee.chunks[2 &* n &+ 1])
  }

  /// Moves up to `items` items and `chunks` pieces to `to` (as many as fit there). Items leave
  /// from the front when `fifo` (spans: the oldest go first), else from the back. Returns the
  /// number moved.
  func move(to: UnsafeMutablePointer<GCQueue>, items: Int, chunks: Int, fifo: Bool) -> Int {
    var moved = 0
    var k = min(items, pointee.count, to.pointee.itemLimit - to.pointee.count)
    while k > 0 {
      _ = to.pushItem(fifo ? popFirst() : popLast())
      k -= 1
      moved += 1
    }
    k = min(chunks, pointee.chunkCount, to.pointee.chunkLimit - to.pointee.chunkCount)
    while k > 0 {
      let (lo, hi) = popChunk()
      to.pushChunk(lo, hi)
      k -= 1
      moved += 1
    }
    return moved
  }
}

/// The mark's shared work (in the GC state): the global queue, the workers' termination
/// counters, and the last cycle's totals.
struct GCWork {
  var global: GCQueue                      // first: `globalQueue`
  static let spanCapacity = 1 << 20       // the global queue's items (more than a 32 GiB heap has spans)
  static let chunkCapacity = 1 << 16      // and its large-object pieces (8 GiB)
  static let chunkBytes = 128 << 10       // a large object is scanned in pieces this big
  static let localItems = 512             // a worker's local queue (n > 1 workers)
  static let localChunks = 64
  static let maxWorkers = 64
  var spanLimit = GCWork.spanCapacity      // (tests lower the limits to force overflows)
  var chunkLimit = GCWork.chunkCapacity
  var lock: LockWord = 0                   // the global queue (n > 1 workers)
  var globalCount: UInt64 = 0              // atomic: its size, readable without the lock
  var nwait: UInt64 = 0                    // atomic: idle workers
  var nworkers = 1                         // workers of the current mark
  var wakeSeq: UInt32 = 0                  // atomic, futex: + 1 when work or the end appears for sleepers
  var sleepers: UInt32 = 0                 // atomic: idle workers asleep (or about to be) on wakeSeq
  var overflow: UInt32 = 0                 // atomic: some push found every queue full
  var overflows = 0                        // recovery passes of the last cycle
  var heapLo: UInt = 0                     // the heap's address range (a candidate outside is no pointer)
  var heapHi: UInt = 0
  var objectQueue = false                  // GOALLOC_DEBUG=gcobjqueue=1
  var wbLock: LockWord = 0                 // the barrier's marker; stop 2 holds it while it stops the world
  var markers: UnsafeMutablePointer<GCMarker>  // [maxWorkers + 1]: the workers', then the barrier's
  var localMemory: UnsafeMutablePointer<UInt>  // their local queues
  // The last cycle's totals (summed from the markers).
  var markedBytes: UInt64 = 0
  var spansScanned = 0                     // span-queue visits (Green Tea's unit of work)
  var objectsScanned = 0
  var workersUsed = 1
  // Mark assists (MGCAssist) use the last `assistSlots` markers; the workers the others.
  static let assistSlots = 4
  static let maxMarkWorkers = maxWorkers - assistSlots
  var assistOpen: UInt32 = 0               // atomic: the concurrent mark takes assists (changed under `lock`)
  var assistBusy: UInt32 = 0               // atomic: assist markers in use (bit j: marker maxMarkWorkers + j)
  var assistHolders: UInt64 = 0            // atomic, changed under `lock`: assists holding work
  var assistWanted: UInt32 = 0             // atomic: an assist found no work (workers then share theirs)
  var markDone: UInt64 = 0                 // atomic: bytes marked this cycle so far (the markers' flushes)
  var bgCredit: UInt64 = 0                 // atomic: bytes the workers marked that no assist has claimed
  var credits = false                      // the markers flush markDone and bgCredit (a concurrent mark)

  init(spans: UnsafeMutablePointer<UInt>, chunks: UnsafeMutablePointer<UInt>,
       markers: UnsafeMutablePointer<GCMarker>, localMemory: UnsafeMutablePointer<UInt>) {
    global = GCQueue(items: spans, chunks: chunks, itemLimit: GCWork.spanCapacity, chunkLimit: GCWork.chunkCapacity)
    self.markers = markers
    self.localMemory = localMemory
  }
  /// Bytes of the local queues of maxWorkers workers and the barrier's marker.
  static var localBytes: Int { (maxWorkers + 1) * (localItems + 2 * localChunks) * 8 }
  /// Items the barrier's marker may hold between a barrier's greys and its flush (old and new).
  static let barrierItems = 2
}

/// One mark worker's state: its queue and counters (its own cache lines).
struct GCMarker {
  var q: GCQueue
  var work: UnsafeMutablePointer<GCWork>
  var arenas: UnsafeMutableRawPointer
  var heapLo: UInt = 0
  var heapHi: UInt = 0
  var parallel = false        // n > 1 workers: atomic mark bits, the global queue
  var objectQueue = false
  var background = false      // a worker, not an assist: its marking is credit for assists
  var markedBytes: UInt64 = 0
  var spansScanned = 0
  var objectsScanned = 0
  var flushed: UInt64 = 0     // markedBytes already added to markDone (credits)
  var _pad: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
}

extension UnsafeMutablePointer where Pointee == GCWork {
  /// Prepares `n` workers for a mark (the collector, world stopped, helpers parked).
  /// `concurrent`: the mark runs beside the program, so every marker uses atomic mark bits and
  /// the global queue (mutators blacken and assist), and the assist markers are made ready.
  func prepare(_ h: UnsafeMutablePointer<MHeap>, workers n: Int, concurrent: Bool = false) {
    let n = Swift.max(1, Swift.min(n, GCWork.maxMarkWorkers))
    let parallel = n > 1 || concurrent
    pointee.nworkers = n
    pointee.workersUsed = n
    pointee.global.itemLimit = pointee.spanLimit
    pointee.global.chunkLimit = pointee.chunkLimit
    globalQueue.reset()
    atomicStore64(&pointee.globalCount, 0)
    atomicStore64(&pointee.nwait, 0)
    atomicStore32(&pointee.overflow, 0)
    atomicStore32(&pointee.sleepers, 0)
    pointee.overflows = 0
    atomicStore32(&pointee.assistOpen, 0)
    atomicStore32(&pointee.assistBusy, 0)
    atomicStore64(&pointee.assistHolders, 0)
    atomicStore32(&pointee.assistWanted, 0)
    atomicStore64(&pointee.markDone, 0)
    atomicStore64(&pointee.bgCredit, 0)
    pointee.credits = concurrent
    let slots = concurrent ? GCWork.assistSlots : 0
    for k in 0..<(n + slots) {
      initMarker(h, k < n ? k : GCWork.maxMarkWorkers + (k - n), parallel: parallel, background: k < n)
    }
    // The barrier's marker: room for its greys' items only (a large object's pieces go to the
    // global queue directly, as a worker's that do not fit its own).
    let base = pointee.localMemory + GCWork.maxWorkers * (GCWork.localItems + 2 * GCWork.localChunks)
    let q = GCQueue(items: base, chunks: base + GCWork.localItems, itemLimit: GCWork.barrierItems, chunkLimit: 0)
    barrierMarker.initialize(to: GCMarker(q: q, work: self, arenas: UnsafeMutableRawPointer(h.pointee.arenas),
                                          heapLo: pointee.heapLo, heapHi: pointee.heapHi, parallel: true,
                                          objectQueue: pointee.objectQueue))
  }

  /// Marker i, with its local queue (parallel) or the global queue as its own (one worker).
  func initMarker(_ h: UnsafeMutablePointer<MHeap>, _ i: Int, parallel: Bool, background: Bool) {
    let m = pointee.markers + i
    var q = pointee.global
    if parallel {
      let base = pointee.localMemory + i * (GCWork.localItems + 2 * GCWork.localChunks)
      q = GCQueue(items: base, chunks: base + GCWork.localItems,
                  itemLimit: Swift.min(GCWork.localItems, pointee.spanLimit),
                  chunkLimit: Swift.min(GCWork.localChunks, pointee.chunkLimit))
    }
    m.initialize(to: GCMarker(q: q, work: self, arenas: UnsafeMutableRawPointer(h.pointee.arenas),
                              heapLo: pointee.heapLo, heapHi: pointee.heapHi, parallel: parallel,
                              objectQueue: pointee.objectQueue))
    m.pointee.background = background
  }

  /// Mark termination of a concurrent cycle (world stopped, no work held anywhere): the mark
  /// goes on with n workers (the concurrent mark ran fewer: MGCConcurrent's utilisation).
  func widen(_ h: UnsafeMutablePointer<MHeap>, to n: Int) {
    let n = Swift.min(n, GCWork.maxMarkWorkers)
    if n <= pointee.nworkers { return }
    for i in pointee.nworkers..<n { initMarker(h, i, parallel: true, background: true) }
    pointee.nworkers = n
    pointee.workersUsed = n
  }

  /// The write barrier's marker (MGCBarrier), after the workers'; used under wbLock.
  @inline(__always) var barrierMarker: UnsafeMutablePointer<GCMarker> { pointee.markers + GCWork.maxWorkers }

  /// The global queue (GCWork's first field).
  @inline(__always) var globalQueue: UnsafeMutablePointer<GCQueue> {
    UnsafeMutableRawPointer(self).assumingMemoryBound(to: GCQueue.self)
  }

  /// Wakes the idle workers asleep, if any: the global queue got work, or the mark ended.
  @inline(__always) func wakeIdle() {
    _ = atomicAdd32(&pointee.wakeSeq, 1)
    if atomicLoad32(&pointee.sleepers) != 0 { goalloc_futex_wake(&pointee.wakeSeq, Int32.max) }
  }

  /// Sums the markers' counters into the last cycle's totals (after the workers stopped).
  func collectTotals() {
    var marked: UInt64 = 0, spans = 0, objects = 0
    let slots = pointee.credits ? GCWork.assistSlots : 0
    for k in 0..<(pointee.nworkers + slots) {
      let m = pointee.markers + (k < pointee.nworkers ? k : GCWork.maxMarkWorkers + (k - pointee.nworkers))
      marked &+= m.pointee.markedBytes
      spans += m.pointee.spansScanned
      objects += m.pointee.objectsScanned
    }
    pointee.markedBytes = marked
    pointee.spansScanned = spans
    pointee.objectsScanned = objects
  }
}

extension UnsafeMutablePointer where Pointee == GCMarker {
  @inline(__always) var queue: UnsafeMutablePointer<GCQueue> {
    UnsafeMutableRawPointer(self).assumingMemoryBound(to: GCQueue.self)  // (q is the first field)
  }

  /// Pushes a span or object. A full local queue first gives half of itself to the global one.
  /// False when there is no room anywhere (the caller records the overflow).
  @inline(__always) func push(_ x: UInt) -> Bool {
    if queue.pushItem(x) { return true }
    return pointee.parallel && spill() && queue.pushItem(x)
  }

  /// Pushes the pieces [lo, hi) of a large object, all or none.
  func pushChunks(_ base: UInt, _ size: Int) -> Bool {
    let pieces = (size + GCWork.chunkBytes - 1) / GCWork.chunkBytes
    if !queue.chunkRoom(pieces) {
      if !pointee.parallel { return false }
      // Room in the global queue for all of them, directly.
      let w = pointee.work
      lockAcquire(&w.pointee.lock)
      let g = w.globalQueue
      if !g.chunkRoom(pieces) {
        lockRelease(&w.pointee.lock)
        return false
      }
      var off = 0
      while off < size {
        g.pushChunk(base + UInt(off), base + UInt(Swift.min(size, off + GCWork.chunkBytes)))
        off += GCWork.chunkBytes
      }
      atomicStore64(&w.pointee.globalCount, UInt64(g.pointee.size))
      lockRelease(&w.pointee.lock)
      w.wakeIdle()
      return true
    }
    var off = 0
    while off < size {
      queue.pushChunk(base + UInt(off), base + UInt(Swift.min(size, off + GCWork.chunkBytes)))
      off += GCWork.chunkBytes
    }
    return true
  }

  /// Moves half of the local queue to the global one; false if nothing fitted.
  @inline(never) func spill() -> Bool {
    let w = pointee.work
    lockAcquire(&w.pointee.lock)
    let g = w.globalQueue
    let moved = queue.move(to: g, items: (queue.pointee.count + 1) / 2, chunks: (queue.pointee.chunkCount + 1) / 2,
                           fifo: !pointee.objectQueue)
    atomicStore64(&w.pointee.globalCount, UInt64(g.pointee.size))
    lockRelease(&w.pointee.lock)
    if moved > 0 { w.wakeIdle() }
    return moved > 0
  }

  /// Gives half of the local work away when another worker is idle, or a mark assist found no
  /// work (MGCAssist), and the global queue is empty (cheap to call often: a few relaxed loads
  /// when there is nothing to do).
  @inline(__always) func balance() {
    if !pointee.parallel || queue.pointee.size < 2 { return }
    let w = pointee.work
    if atomicLoadRelaxed64(&w.pointee.globalCount) != 0 { return }
    if atomicLoadRelaxed64(&w.pointee.nwait) == 0 {
      if atomicLoadRelaxed32(&w.pointee.assistWanted) == 0 { return }
      atomicStoreRelaxed32(&w.pointee.assistWanted, 0)
    }
    _ = spill()
  }

  /// Takes a batch from the global queue into the empty local one (lock held by the caller).
  func takeLocked() -> Bool {
    let w = pointee.work
    let g = w.globalQueue
    if g.pointee.isEmpty { return false }
    _ = g.move(to: queue, items: Swift.max(1, Swift.min(GCWork.localItems / 2, (g.pointee.count + 1) / 2)),
               chunks: Swift.max(1, Swift.min(GCWork.localChunks / 2, (g.pointee.chunkCount + 1) / 2)),
               fifo: !pointee.objectQueue)
    atomicStore64(&w.pointee.globalCount, UInt64(g.pointee.size))
    return true
  }

  /// Local work, refilled from the global queue; when there is none anywhere, waits idle until
  /// work appears (true) or every worker is idle (false: the mark is done).
  func getWork() -> Bool {
    if !queue.pointee.isEmpty { return true }
    if !pointee.parallel { return false }
    let w = pointee.work
    lockAcquire(&w.pointee.lock)
    if takeLocked() {
      lockRelease(&w.pointee.lock)
      return true
    }
    let idle = atomicAdd64(&w.pointee.nwait, 1) + 1
    let holders = atomicLoad64(&w.pointee.assistHolders)
    lockRelease(&w.pointee.lock)
    if idle == UInt64(w.pointee.nworkers) && holders == 0 {  // the last one: the mark is done
      w.wakeIdle()
      return false
    }
    return waitForWork()
  }

  /// Whether the mark is done: every worker idle, no assist holding work, the global queue
  /// empty; once true it stays so (idle workers and assists without work push nothing). Read
  /// under the lock, where all three change.
  func markIsDone() -> Bool {
    let w = pointee.work
    if atomicLoad64(&w.pointee.nwait) != UInt64(w.pointee.nworkers) { return false }
    lockAcquire(&w.pointee.lock)
    let done = atomicLoad64(&w.pointee.nwait) == UInt64(w.pointee.nworkers)
      && atomicLoad64(&w.pointee.assistHolders) == 0 && w.globalQueue.pointee.isEmpty
    lockRelease(&w.pointee.lock)
    return done
  }

  /// Idle: spins a little, then sleeps on `wakeSeq`, until the global queue has work (taken:
  /// true) or every worker is idle (false). Called with nwait counting this worker. Sleeping
  /// matters: with more workers than free CPUs, spinning ones would take the CPU from the
  /// worker that has the work.
  func waitForWork() -> Bool {
    let w = pointee.work
    var spins = 0
    while true {
      if atomicLoad64(&w.pointee.nwait) == UInt64(w.pointee.nworkers) && markIsDone() { return false }
      if spins >= 64 {
        // (sleepers before the sequence, the sequence before the checks: a waker that changes
        // the queue or nwait after our checks bumps the sequence after our read, so the wait
        // returns at once or is woken.)
        _ = atomicAdd32(&w.pointee.sleepers, 1)
        let seq = atomicLoad32(&w.pointee.wakeSeq)
        if atomicLoad64(&w.pointee.globalCount) == 0
           && (atomicLoad64(&w.pointee.nwait) != UInt64(w.pointee.nworkers) || atomicLoad64(&w.pointee.assistHolders) != 0) {
          _ = goalloc_gc_park(&w.pointee.wakeSeq, seq, 2_000_000)  // (a bound, in case a wake is missed)
        }
        _ = atomicAdd32(&w.pointee.sleepers, UInt32.max)
        spins = 0
        continue
      }
      if atomicLoad64(&w.pointee.globalCount) != 0 {
        lockAcquire(&w.pointee.lock)
        if takeLocked() {
          atomicAdd64(&w.pointee.nwait, UInt64.max)  // (- 1: busy again)
          lockRelease(&w.pointee.lock)
          return true
        }
        lockRelease(&w.pointee.lock)
      }
      spins += 1
      goalloc_cpu_relax()
    }
  }

  /// Records that a push found no room: the recovery will find the object.
  @inline(never) func noteOverflow() {
    atomicStore32(&pointee.work.pointee.overflow, 1)
  }
}
