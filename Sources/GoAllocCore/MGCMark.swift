// MGCMark: marking, with the world stopped (Go's mgcmark.go and, for small objects, its Green
// Tea marker, mgcmark_greenteagc.go).
//
// Roots, all scanned conservatively (every aligned word that lands in an object keeps it):
//   - each registered thread's stack, from the stack pointer saved at the stop (its signal frame,
//     which holds every register, lies above it) to the top of its stack mapping (which, for a
//     pthread, also holds its static TLS); the collecting thread from below its spilled
//     registers; and its static TLS with its thread descriptor where they lie elsewhere (the
//     main thread's, allocated by ld.so: goalloc_gc_tls_bounds);
//   - the writable segments of every loaded image (listed before the stop; each checked still
//     mapped), except GoAlloc's own when it is a library (its data is allocator metadata);
//   - the added root ranges;
//   - live malloc memory in *scan* spans (GoAlloc.allocate(scan: true), and
//     goalloc_gc_malloc_uncollectable; found by a walk of the spans tables, which reads one
//     entry per span or free page): every slot ever handed out (below highWater) whose word
//     1 does not hold a FreeList mark. That reads nothing a thread stopped anywhere in the
//     malloc fast path can have half-written (allocCache and freeindex are not trusted), and
//     errs only towards keeping. Noscan malloc memory (everything C's malloc returns) is never
//     read.
// Greying a candidate p: its span (arena index) must be in use and collected, p inside a slot
// that is allocated (allocBits or below freeindex: consistent, because a thread is never stopped
// inside a GC allocation's critical section) and not explicitly freed (freeBits). The mark bit is
// set; noscan objects stop there. A small object's span goes onto the *span queue* once (its
// `gcqueued` byte); when it is taken off (first in, first out, so marks gather meanwhile) every
// object marked and not yet scanned (gcmarkBits & ~scanned, the scanned bits in the span's
// localFreeBits words) is scanned in address order. A large object is pushed onto the *chunk
// queue* as pieces of at most 128 KiB. Interior pointers keep an object; one past its end is the
// next slot's (or no slot's).
// GOALLOC_DEBUG=gcobjqueue=1 replaces the span queue with a classic object queue (a stack of
// object addresses in the same memory, each marked scanned as it is pushed, its span looked up
// again when it is popped), for the benchmark's side-by-side (`goalloc bench gc`).
// The queues (MGCWork) are fixed memory; when one is full the object stays marked and unscanned
// and `overflow` is set; once the queues drain, every collected span is searched for
// marked-unscanned objects again until a pass finds none (bdwgc's recovery). So the mark never
// allocates and never overflows.
// Parallel (GOALLOC_GC_PROCS=n > 1, MGCWorkers): the collecting thread scans the roots while n-1
// helpers take the spans and pieces it finds; every worker drains its local queue and shares
// through the global one (MGCWork). Mark bits are then set with an atomic OR (the setter of a
// bit owns the object's marking), a span's `gcqueued` byte is taken with a CAS, and a span
// scan claims its objects with an atomic OR on the scanned bits, so two workers scanning one
// span (it was queued again meanwhile) never scan an object twice. The span queue's handshake:
// a marker sets the mark bit then reads `gcqueued`; a scanner clears `gcqueued` then reads the
// mark bits (both sequentially consistent): either the scanner sees the new mark, or the
// marker sees the span unqueued and queues it again. One worker uses plain operations.
import CGoAllocShim

extension UnsafeMutablePointer where Pointee == GCState {
  /// Marks everything reachable from the roots. World stopped, every allocator lock held;
  /// `workers` mark workers (the helpers among them parked, MGCWorkers).
  func gcMark(_ h: UnsafeMutablePointer<MHeap>, callerSP: UInt, me: Int, workers: Int) {
    gcMarkStart(h, callerSP: callerSP, me: me, workers: workers)
    finishMark(h, helpersAwake: true)
  }

  /// Stop 1's part of the mark: the markers prepared, the helpers woken, every root scanned.
  /// World stopped, every allocator lock held.
  func gcMarkStart(_ h: UnsafeMutablePointer<MHeap>, callerSP: UInt, me: Int, workers: Int, concurrent: Bool = false,
                   otherStacks: Bool = true) {
    let w = pointee.work
    gcSetHeapBounds(h)
    w.prepare(h, workers: workers, concurrent: concurrent)
    let n = w.pointee.nworkers
    atomicStore64(&w.pointee.nwait, UInt64(n - 1))  // the helpers start idle
    if n > 1 { gcWakeWorkers(n) }
    gcScanRoots(h, callerSP: callerSP, me: me, mallocSpans: true, otherStacks: otherStacks)
  }

  /// The heap's address range (a candidate outside it is no pointer), into the work state.
  /// Every allocator lock held.
  func gcSetHeapBounds(_ h: UnsafeMutablePointer<MHeap>) {
    var lo = UInt.max, hi: UInt = 0
    var r = h.pointee.ranges
    while let x = r {
      lo = min(lo, x.pointee.base)
      hi = max(hi, x.pointee.end)
      r = x.pointee.next
    }
    pointee.work.pointee.heapLo = lo
    pointee.work.pointee.heapHi = hi
  }

  /// Scans the roots through worker 0 (world stopped, every allocator lock held): each stopped
  /// thread's stack, the images' writable segments, the added roots and, with `mallocSpans`,
  /// the live memory of malloc scan spans. Sets stackBytes and globalsBytes. Without
  /// `otherStacks` only the calling thread's stack (concurrent stop 1: MGCConcurrent scans the
  /// others one by one after it).
  func gcScanRoots(_ h: UnsafeMutablePointer<MHeap>, callerSP: UInt, me: Int, mallocSpans: Bool, otherStacks: Bool = true) {
    let m = pointee.work.pointee.markers  // worker 0: this thread
    var stacks: UInt64 = 0, globals: UInt64 = 0
    // Threads' stacks.
    var it = h.pointee.caches.pointee.head
    let epoch = goalloc_gc_epoch()
    while let raw = it {
      let c = MCache(raw)
      it = c.link.pointee.next
      guard let t = c.header.pointee.gcThread?.assumingMemoryBound(to: goalloc_gc_thread.self) else { continue }
      var from: UInt = 0
      if c.header.pointee.tid == me {
        from = callerSP
        if t.pointee.stack_hi == 0 || from < t.pointee.stack_lo || from >= t.pointee.stack_hi {
          var l: UInt = 0, u: UInt = 0
          if goalloc_stack_bounds(from, &l, &u) != 0 { t.pointee.stack_lo = l; t.pointee.stack_hi = u }
        }
        goalloc_gc_tls_bounds(t)  // (a stopped thread computed its own in the stop handler)
      } else {
        if !otherStacks { continue }
        // Stopped in this cycle: its handler saved sp (a thread that died meanwhile did not).
        if atomicLoad32(&t.pointee.stopped) != epoch { continue }
        from = atomicLoadRelaxedUInt(&t.pointee.sp)
      }
      let r = t.rootRanges(from: from)
      stacks &+= m.scanRoot(r.stack) &+ m.scanRoot(r.tls)
    }
    // Images' writable segments.
    for i in 0..<pointee.nimages {
      let a = pointee.images[2 * i], b = pointee.images[2 * i + 1]
      if goalloc_range_mapped(a, b) != 0 {
        m.scanRange(a, b)
        m.balance()
        globals &+= UInt64(b - a)
      }
    }
    // Added roots.
    for i in 0..<pointee.nroots {
      let a = pointee.roots[2 * i], b = pointee.roots[2 * i + 1]
      m.scanRange(a, b)
      m.balance()
      globals &+= UInt64(b &- a)
    }
    // Live malloc memory in scan spans (uncollectable objects among it).
    if mallocSpans { globals &+= m.scanMallocScanSpans(h) }
    pointee.stackBytes = stacks
    pointee.globalsBytes = globals
  }

  /// Marks until nothing marked is left unscanned: a round on every worker (waking the helpers
  /// unless they are awake already), then overflow recovery rounds until one ends clean; sums
  /// the markers' counters.
  func finishMark(_ h: UnsafeMutablePointer<MHeap>, helpersAwake: Bool) {
    let w = pointee.work
    let n = w.pointee.nworkers, m = w.pointee.markers
    var awake = helpersAwake
    while true {
      if !awake {
        atomicStore64(&w.pointee.nwait, UInt64(n - 1))  // (one worker in a concurrent cycle: parallel too)
        if n > 1 { gcWakeWorkers(n) }
      }
      m.markLoop(startIdle: false)
      if n > 1 { gcWaitWorkers() }
      awake = false
      if atomicLoad32(&w.pointee.overflow) == 0 { break }
      atomicStore32(&w.pointee.overflow, 0)
      w.pointee.overflows += 1
      m.requeueUnscanned(h)
    }
    w.collectTotals()
  }

  /// Marking from roots found after gcMark (mark termination's specials, MGCSpecialsMark): the
  /// collecting thread greys through worker 0 (`marker0`), then every worker drains as in gcMark.
  func drainAll(_ h: UnsafeMutablePointer<MHeap>) { finishMark(h, helpersAwake: false) }

  /// Worker 0: the collecting thread's marker.
  @inline(__always) var marker0: UnsafeMutablePointer<GCMarker> { pointee.work.pointee.markers }

  /// A helper's part of a round (MGCWorkers): it starts idle, counted in nwait.
  func gcHelperMark(_ id: Int) {
    (pointee.work.pointee.markers + id).markLoop(startIdle: true)
  }
}

extension UnsafeMutablePointer where Pointee == goalloc_gc_thread {
  /// A registered thread's roots: its stack from `from` (its saved sp, or the collecting
  /// thread's own) to the top of its mapping, and its static TLS where that lies outside it
  /// (empty ranges as (0, 0)).
  func rootRanges(from: UInt) -> (stack: (UInt, UInt), tls: (UInt, UInt)) {
    let top = pointee.stack_hi
    let stack = from != 0 && top > from ? (from, top) : (UInt(0), UInt(0))
    let tls = atomicLoad32(&pointee.tls_known) != 0 && pointee.tls_hi > pointee.tls_lo
      ? (pointee.tls_lo, pointee.tls_hi) : (UInt(0), UInt(0))
    return (stack, tls)
  }
}

extension UnsafeMutablePointer where Pointee == GCMarker {
  /// A fractional worker's loop (a concurrent mark, MGCPacer.gcBackgroundWorkers): as markLoop,
  /// but it keeps its CPU time near `fraction` of the time since it began; over that, it hands
  /// its local work to the global queue (for assists and the other workers) and sleeps off the
  /// difference, at most 1 ms at a time. Never idle while it sleeps: the mark cannot end then.
  func markLoopFractional(_ fraction: Double) {
    let wall0 = goalloc_nanotime(), cpu0 = goalloc_thread_cputime()
    while true {
      drain(budget: 256 << 10)
      let used = Double(goalloc_thread_cputime() &- cpu0), wall = Double(goalloc_nanotime() &- wall0)
      if used > fraction * wall {
        if !queue.pointee.isEmpty { spillAll(holding: false) }
        goalloc_sleep_ns(UInt64(Swift.min(used / fraction - wall, 1e6)))
      }
      if queue.pointee.isEmpty && !getWork() { return }
    }
  }

  /// Drains work until the mark (this round) is done: for one worker, until its queue is
  /// empty; for several, until every worker is idle (MGCWork).
  func markLoop(startIdle: Bool) {
    if startIdle && !waitForWork() { return }
    while true {
      drain()
      if !getWork() { return }
    }
  }

  /// Scans every slot ever handed out of every in-use malloc span of a scan class; returns the
  /// bytes scanned.
  func scanMallocScanSpans(_ h: UnsafeMutablePointer<MHeap>) -> UInt64 {
    var bytes: UInt64 = 0
    let key = h.pointee.freeKey
    if atomicLoad32(&h.pointee.rootSpansSeen) == 0 { return 0 }  // (C's malloc: all noscan)
    var walk = SpanWalk(h)
    while let s = walk.next() {
      if s.pointee.collected != 0 || atomicLoad32(&s.pointee.state) != spanInUse { continue }
      let spc = s.spanClass
      if spc.noscan { continue }
      let es = s.pointee.elemsize, base = s.pointee.startAddr
      if spc.isLarge {
        scanRange(base, base + UInt(es))
        bytes &+= UInt64(es)
        balance()
        continue
      }
      let n = Int(s.highWater)
      for i in 0..<n {
        let p = base + UInt(i * es)
        // A listed or bitmap-free slot (FreeList's marks in word 1) holds no live pointer.
        if es >= 16 && MCache.isFreeMark(UnsafePointer<UInt>(bitPattern: p).unsafelyUnwrapped[1], key: key) { continue }
        scanRange(p, p + UInt(es))
        bytes &+= UInt64(es)
      }
      balance()
    }
    return bytes
  }

  /// A root range scanned, then work shared if a worker waits; returns its bytes.
  func scanRoot(_ r: (UInt, UInt)) -> UInt64 {
    if r.1 <= r.0 { return 0 }
    scanRange(r.0, r.1)
    balance()
    return UInt64(r.1 - r.0)
  }

  /// Conservative scan of [lo, hi): every 8-byte-aligned word is a candidate pointer.
  func scanRange(_ lo: UInt, _ hi: UInt) {
    var p = (lo &+ 7) & ~7
    let heapLo = pointee.heapLo, heapHi = pointee.heapHi
    while p &+ 8 <= hi {
      let v = UnsafePointer<UInt>(bitPattern: p).unsafelyUnwrapped.pointee
      if v >= heapLo && v < heapHi { grey(v) }
      p &+= 8
    }
  }

  /// Sets `bit` in the mark word m; true when this call set it (it was clear).
  @inline(__always) func setMark(_ m: UnsafeMutablePointer<UInt64>, _ bit: UInt64) -> Bool {
    let v = atomicLoadRelaxed64(m)
    if v & bit != 0 { return false }
    if !pointee.parallel {
      m.pointee = v | bit
      return true
    }
    return atomicOrSeqCst64(m, bit) & bit == 0
  }

  /// Sets bits in a scanned word; returns those this call set.
  @inline(__always) func claimScanned(_ sw: UnsafeMutablePointer<UInt64>, _ bits: UInt64) -> UInt64 {
    if !pointee.parallel {
      sw.pointee |= bits
      return bits
    }
    return bits & ~atomicOr64(sw, bits)
  }

  /// Marks the object holding p, if p points into a live collected object, and queues it for
  /// scanning (Go's greyobject).
  @inline(__always)
  func grey(_ p: UInt) {
    guard let s = spanOfIndex(pointee.arenas, p) else { return }
    if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse { return }
    if s.isLarge {
      if p >= s.pointee.startAddr &+ UInt(s.pointee.elemsize) { return }  // a guard page
      if !setMark(s.gcmarkWord(0), 1) { return }
      pointee.markedBytes &+= UInt64(s.pointee.elemsize)
      if !s.spanClass.noscan { pushLarge(s) }
      return
    }
    let idx = s.objIndex(p)
    if idx >= s.pointee.nelems || !s.isAllocated(idx) { return }
    let w = idx &>> 6, bit: UInt64 = 1 &<< UInt64(idx & 63)
    if atomicLoadRelaxed64(s.freeWord(w)) & bit != 0 { return }  // freed explicitly
    if !setMark(s.gcmarkWord(w), bit) { return }
    pointee.markedBytes &+= UInt64(s.pointee.elemsize)
    if s.spanClass.noscan { return }
    if pointee.objectQueue { return pushObject(s, w, bit, s.pointee.startAddr &+ UInt(idx) &* UInt(s.pointee.elemsize)) }
    queueSpan(s)
  }

  /// Puts s on the span queue unless it is there already.
  @inline(__always) func queueSpan(_ s: SpanPtr) {
    if !pointee.parallel {
      if s.pointee.gcqueued != 0 { return }
      if push(UInt(bitPattern: s)) { s.pointee.gcqueued = 1 } else { noteOverflow() }
      return
    }
    if atomicLoadSeqCst8(&s.pointee.gcqueued) != 0 { return }
    if !atomicCASSeqCst8(&s.pointee.gcqueued, 0, 1) { return }
    if !push(UInt(bitPattern: s)) {
      atomicStoreSeqCst8(&s.pointee.gcqueued, 0)
      noteOverflow()
    }
  }

  /// GOALLOC_DEBUG=gcobjqueue=1: the object at p (slot bit `bit` of word w of s) onto the object
  /// stack (last in first out, as a classic marker's work list), marked scanned as it is
  /// queued; when every stack is full it stays unscanned for the recovery.
  func pushObject(_ s: SpanPtr, _ w: Int, _ bit: UInt64, _ p: UInt) {
    if !push(p) {
      noteOverflow()
      return
    }
    _ = claimScanned(s.localWord(w), bit)
  }

  /// Queues a marked large object's pieces; when they do not all fit, none is queued and the
  /// object stays unscanned (the overflow recovery finds it).
  func pushLarge(_ s: SpanPtr) {
    if !pushChunks(s.pointee.startAddr, s.pointee.elemsize) {
      noteOverflow()
      return
    }
    _ = claimScanned(s.localWord(0), 1)  // scanned (its pieces are queued)
  }

  /// Scans until the local queue is empty (sharing work when others are idle).
  /// Scans local work until the local queue is empty, or (an assist) until it has marked
  /// `budget` bytes. In a concurrent mark the bytes marked are flushed to the shared counters
  /// (MGCAssist) every 64 items and at the end.
  func drain(budget: UInt64 = UInt64.max) {
    let q = queue
    let stop = UInt64.max - pointee.markedBytes > budget ? pointee.markedBytes &+ budget : UInt64.max
    var ticks = 0
    defer { if pointee.work.pointee.credits { flushCredit() } }
    while true {
      if pointee.markedBytes >= stop { return }  // (an assist's budget)
      if pointee.work.pointee.credits {
        ticks &+= 1
        if ticks & 63 == 0 { flushCredit() }
      }
      balance()
      if q.pointee.chunkCount > 0 {
        let (lo, hi) = q.popChunk()
        scanRange(lo, hi)
        continue
      }
      if q.pointee.count == 0 { return }
      if pointee.objectQueue {
        let p = q.popLast()
        let s = spanOfIndex(pointee.arenas, p).unsafelyUnwrapped  // (as a classic scanobject)
        pointee.objectsScanned += 1
        scanRange(p, p &+ UInt(s.pointee.elemsize))
        continue
      }
      let s = SpanPtr(bitPattern: q.popFirst()).unsafelyUnwrapped
      if q.pointee.count > 0 { goalloc_prefetch(q.pointee.items[q.pointee.head]) }  // the next span
      if pointee.parallel {
        atomicStoreSeqCst8(&s.pointee.gcqueued, 0)
      } else {
        s.pointee.gcqueued = 0
      }
      scanSpan(s)
    }
  }

  /// Green Tea: scans every object of s marked since s was last scanned, in address order.
  func scanSpan(_ s: SpanPtr) {
    pointee.spansScanned += 1
    let es = UInt(s.pointee.elemsize), base = s.pointee.startAddr
    let par = pointee.parallel
    for w in 0..<s.usedWords {
      let sw = s.localWord(w)
      let marks = par ? atomicLoadSeqCst64(s.gcmarkWord(w)) : s.gcmarkWord(w).pointee
      var todo = marks & ~(par ? atomicLoadRelaxed64(sw) : sw.pointee)
      if todo == 0 { continue }
      todo = claimScanned(sw, todo)
      while todo != 0 {
        let i = UInt(w &<< 6 &+ todo.trailingZeroBitCount)
        todo &= todo &- 1
        let p = base &+ i &* es
        // The next object's memory, while this one is scanned (the mark waits on memory).
        if todo != 0 { goalloc_prefetch(base &+ UInt(w &<< 6 &+ todo.trailingZeroBitCount) &* es) }
        pointee.objectsScanned += 1
        scanRange(p, p &+ es)
      }
    }
  }

  /// Overflow recovery (one worker, the others parked): queues every collected scan span (and
  /// large object) with objects marked and not yet scanned; sets overflow again if the queues
  /// fill meanwhile.
  func requeueUnscanned(_ h: UnsafeMutablePointer<MHeap>) {
    let work = pointee.work
    var walk = SpanWalk(h)
    while let s = walk.next() {
      if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse || s.spanClass.noscan { continue }
      if s.isLarge {
        if s.gcmarkWord(0).pointee & 1 != 0 && s.localWord(0).pointee & 1 == 0 { pushLarge(s) }
        continue
      }
      if pointee.objectQueue {
        for w in 0..<s.usedWords {
          var todo = s.gcmarkWord(w).pointee & ~s.localWord(w).pointee
          while todo != 0 && atomicLoad32(&work.pointee.overflow) == 0 {
            let i = w &<< 6 &+ todo.trailingZeroBitCount
            todo &= todo &- 1
            pushObject(s, w, 1 &<< UInt64(i & 63), s.pointee.startAddr &+ UInt(i) &* UInt(s.pointee.elemsize))
          }
        }
        continue
      }
      if s.pointee.gcqueued != 0 { continue }
      for w in 0..<s.usedWords where s.gcmarkWord(w).pointee & ~s.localWord(w).pointee != 0 {
        queueSpan(s)
        break
      }
    }
  }
}

// MARK: allocate-black (MGCConcurrent: objects allocated during a concurrent mark)

extension UnsafeMutablePointer where Pointee == GCState {
  /// Allocate-black for small span s: the slots of [from, freeindex) not in allocBits get their
  /// mark and scanned bits. Its holder's thread, or the world stopped.
  func gcBlacken(_ s: SpanPtr, from: Int) {
    let to = s.pointee.freeindex
    if s.pointee.collected == 0 || s.isLarge || to <= from || from < 0 { return }
    var bytes: UInt64 = 0
    var w = from >> 6
    while w << 6 < to {
      let lo = w << 6
      let a = Swift.max(from, lo) - lo, b = Swift.min(to, lo + 64) - lo
      let range: UInt64 = (b == 64 ? ~0 : (1 &<< UInt64(b)) &- 1) & ~((1 &<< UInt64(a)) &- 1)
      let black = range & ~s.allocWord(w).pointee
      if black != 0 {
        let old = atomicOr64(s.gcmarkWord(w), black)
        _ = atomicOr64(s.localWord(w), black)
        bytes &+= UInt64((black & ~old).nonzeroBitCount) &* UInt64(s.pointee.elemsize)
      }
      w += 1
    }
    if bytes != 0 { atomicAdd64(&pointee.blackBytes, bytes) }
  }

  /// Allocate-black for a large object allocated during the mark: marked, and scanned (it is
  /// zeroed: a write the dirty-page rescan sees).
  func gcBlackenLarge(_ s: SpanPtr) {
    if atomicOr64(s.gcmarkWord(0), 1) & 1 == 0 { atomicAdd64(&pointee.blackBytes, UInt64(s.pointee.elemsize)) }
    _ = atomicOr64(s.localWord(0), 1)
  }
}
