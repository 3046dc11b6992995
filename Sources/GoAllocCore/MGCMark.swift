// MGCMark: marking, with the world stopped (Go's mgcmark.go and, for small objects, its Green
// Tea marker, mgcmark_greenteagc.go).
//
// Roots, all scanned conservatively (every aligned word that lands in an object keeps it):
//   - each registered thread's stack, from the stack pointer saved at the stop (its signal frame,
//     which holds every register, lies above it) to the top of its stack mapping (which, for a
//     pthread, also holds its static TLS); the collecting thread from below its spilled
//     registers;
//   - the writable segments of every loaded image (listed before the stop; each checked still
//     mapped), except GoAlloc's own when it is a library (its data is allocator metadata);
//   - the added root ranges;
//   - live malloc memory in *scan* spans (GoAlloc.allocate(scan: true), and
//     goalloc_gc_malloc_uncollectable; found on MHeap.rootspans, so the mark never walks the
//     heap's other spans): every slot ever handed out (below highWater) whose word
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
// Both queues are fixed (mapped once, `GCWork`); when one is full the object stays marked and
// unscanned and `overflow` is set; once the queues drain, every collected span is searched for
// marked-unscanned objects again until a pass finds none (bdwgc's recovery). So the mark never
// allocates and never overflows.
// Single-threaded in stage 1; parallel workers (stage 3) take spans off the same queue with
// atomic mark bits (`gcMarkBit`) and per-worker queues.
import CGoAllocShim

/// The mark's work queues (in the GC state's mapping).
struct GCWork {
  static let spanCapacity = 1 << 16
  static let chunkCapacity = 1 << 14
  static let chunkBytes = 128 << 10
  var spans: UnsafeMutablePointer<SpanPtr?>
  var chunks: UnsafeMutablePointer<UInt>   // [lo, hi) pairs
  var spanLimit = GCWork.spanCapacity      // (tests lower the limits to force overflows)
  var chunkLimit = GCWork.chunkCapacity
  var spanHead = 0
  var spanCount = 0
  var chunkCount = 0
  var overflow = false
  var overflows = 0             // recovery passes of the last cycle
  var heapLo: UInt = 0          // the heap's address range (a candidate outside is no pointer)
  var heapHi: UInt = 0
  var markedBytes: UInt64 = 0
  var spansScanned = 0          // span-queue visits of the last cycle (Green Tea's unit of work)
  var objectsScanned = 0
  var objectQueue = false       // GOALLOC_DEBUG=gcobjqueue=1: small objects through an object queue

  init(spans: UnsafeMutablePointer<SpanPtr?>, chunks: UnsafeMutablePointer<UInt>) {
    self.spans = spans
    self.chunks = chunks
  }
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Marks everything reachable from the roots. World stopped, every allocator lock held.
  func gcMark(_ h: UnsafeMutablePointer<MHeap>, callerSP: UInt, me: Int) {
    pointee.work.spanHead = 0
    pointee.work.spanCount = 0
    pointee.work.chunkCount = 0
    pointee.work.overflow = false
    pointee.work.overflows = 0
    pointee.work.markedBytes = 0
    pointee.work.spansScanned = 0
    pointee.work.objectsScanned = 0
    var lo = UInt.max, hi: UInt = 0
    var r = h.pointee.ranges
    while let x = r {
      lo = min(lo, x.pointee.base)
      hi = max(hi, x.pointee.end)
      r = x.pointee.next
    }
    pointee.work.heapLo = lo
    pointee.work.heapHi = hi
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
      } else {
        // Stopped in this cycle: its handler saved sp (a thread that died meanwhile did not).
        if atomicLoad32(&t.pointee.stopped) != epoch { continue }
        from = atomicLoadRelaxedUInt(&t.pointee.sp)
      }
      let top = t.pointee.stack_hi
      if from != 0 && top > from {
        scanRange(h, from, top)
        stacks &+= UInt64(top - from)
      }
    }
    // Images' writable segments.
    for i in 0..<pointee.nimages {
      let a = pointee.images[2 * i], b = pointee.images[2 * i + 1]
      if goalloc_range_mapped(a, b) != 0 {
        scanRange(h, a, b)
        globals &+= UInt64(b - a)
      }
    }
    // Added roots.
    for i in 0..<pointee.nroots {
      let a = pointee.roots[2 * i], b = pointee.roots[2 * i + 1]
      scanRange(h, a, b)
      globals &+= UInt64(b &- a)
    }
    // Live malloc memory in scan spans (uncollectable objects among it).
    globals &+= scanMallocScanSpans(h)
    pointee.stackBytes = stacks
    pointee.globalsBytes = globals
    drainAll(h)
  }

  /// Drains both queues, then recovers from overflows until nothing marked is left unscanned.
  func drainAll(_ h: UnsafeMutablePointer<MHeap>) {
    drain(h)
    while pointee.work.overflow {
      pointee.work.overflow = false
      pointee.work.overflows += 1
      requeueUnscanned(h)
      drain(h)
    }
  }

  /// Scans every slot ever handed out of every in-use malloc span of a scan class; returns the
  /// bytes scanned.
  func scanMallocScanSpans(_ h: UnsafeMutablePointer<MHeap>) -> UInt64 {
    var bytes: UInt64 = 0
    let key = h.pointee.freeKey
    var it = h.pointee.rootspans  // (every malloc span of a scan class, and nothing else)
    while let s = it {
      it = s.pointee.allnext
      if s.pointee.collected != 0 || atomicLoad32(&s.pointee.state) != spanInUse { continue }
      let spc = s.spanClass
      if spc.noscan { continue }
      let es = s.pointee.elemsize, base = s.pointee.startAddr
      if spc.isLarge {
        scanRange(h, base, base + UInt(es))
        bytes &+= UInt64(es)
        continue
      }
      let n = Int(s.highWater)
      for i in 0..<n {
        let p = base + UInt(i * es)
        // A listed or bitmap-free slot (FreeList's marks in word 1) holds no live pointer.
        if es >= 16 && MCache.isFreeMark(UnsafePointer<UInt>(bitPattern: p).unsafelyUnwrapped[1], key: key) { continue }
        scanRange(h, p, p + UInt(es))
        bytes &+= UInt64(es)
      }
    }
    return bytes
  }

  /// Conservative scan of [lo, hi): every 8-byte-aligned word is a candidate pointer.
  func scanRange(_ h: UnsafeMutablePointer<MHeap>, _ lo: UInt, _ hi: UInt) {
    var p = (lo &+ 7) & ~7
    let heapLo = pointee.work.heapLo, heapHi = pointee.work.heapHi
    while p &+ 8 <= hi {
      let v = UnsafePointer<UInt>(bitPattern: p).unsafelyUnwrapped.pointee
      if v >= heapLo && v < heapHi { grey(h, v) }
      p &+= 8
    }
  }

  /// Marks the object holding p, if p points into a live collected object, and queues it for
  /// scanning (Go's greyobject).
  @inline(__always)
  func grey(_ h: UnsafeMutablePointer<MHeap>, _ p: UInt) {
    guard let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), p) else { return }
    if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse { return }
    if s.isLarge {
      if p >= s.pointee.startAddr &+ UInt(s.pointee.elemsize) { return }  // a guard page
      let m = s.gcmarkWord(0)
      if m.pointee & 1 != 0 { return }
      m.pointee |= 1
      pointee.work.markedBytes &+= UInt64(s.pointee.elemsize)
      if !s.spanClass.noscan { pushLarge(s) }
      return
    }
    let idx = s.objIndex(p)
    if idx >= s.pointee.nelems || !s.isAllocated(idx) { return }
    let w = idx &>> 6, bit: UInt64 = 1 &<< UInt64(idx & 63)
    if atomicLoadRelaxed64(s.freeWord(w)) & bit != 0 { return }  // freed explicitly
    let m = s.gcmarkWord(w)
    if m.pointee & bit != 0 { return }
    m.pointee |= bit
    pointee.work.markedBytes &+= UInt64(s.pointee.elemsize)
    if s.spanClass.noscan { return }
    if pointee.work.objectQueue { return pushObject(s, w, bit, s.pointee.startAddr &+ UInt(idx) &* UInt(s.pointee.elemsize)) }
    if s.pointee.gcqueued != 0 { return }
    if enqueueSpan(s) { s.pointee.gcqueued = 1 } else { pointee.work.overflow = true }
  }

  /// GOALLOC_DEBUG=gcobjqueue=1: the object at p (slot bit `bit` of word w of s) onto the object
  /// stack (the span queue's memory, last in first out, as a classic marker's work list), marked
  /// scanned as it is queued; when the stack is full it stays unscanned for the recovery.
  func pushObject(_ s: SpanPtr, _ w: Int, _ bit: UInt64, _ p: UInt) {
    let n = pointee.work.spanCount
    if n == pointee.work.spanLimit {
      pointee.work.overflow = true
      return
    }
    UnsafeMutableRawPointer(pointee.work.spans).assumingMemoryBound(to: UInt.self)[n] = p
    pointee.work.spanCount = n + 1
    s.localWord(w).pointee |= bit
  }

  func enqueueSpan(_ s: SpanPtr) -> Bool {
    let n = pointee.work.spanCount
    if n == pointee.work.spanLimit { return false }
    pointee.work.spans[(pointee.work.spanHead + n) % pointee.work.spanLimit] = s
    pointee.work.spanCount = n + 1
    return true
  }

  /// Queues a marked large object's pieces; when they do not all fit, none is queued and the
  /// object stays unscanned (the overflow recovery finds it).
  func pushLarge(_ s: SpanPtr) {
    let base = s.pointee.startAddr, size = s.pointee.elemsize
    let pieces = (size + GCWork.chunkBytes - 1) / GCWork.chunkBytes
    if pointee.work.chunkCount + pieces > pointee.work.chunkLimit {
      pointee.work.overflow = true
      return
    }
    var off = 0
    while off < size {
      let n = pointee.work.chunkCount
      pointee.work.chunks[2 * n] = base + UInt(off)
      pointee.work.chunks[2 * n + 1] = base + UInt(min(size, off + GCWork.chunkBytes))
      pointee.work.chunkCount = n + 1
      off += GCWork.chunkBytes
    }
    s.localWord(0).pointee |= 1  // scanned (its pieces are queued)
  }

  /// Scans until both queues are empty.
  func drain(_ h: UnsafeMutablePointer<MHeap>) {
    while true {
      if pointee.work.chunkCount > 0 {
        let n = pointee.work.chunkCount - 1
        pointee.work.chunkCount = n
        scanRange(h, pointee.work.chunks[2 * n], pointee.work.chunks[2 * n + 1])
        continue
      }
      if pointee.work.objectQueue && pointee.work.spanCount > 0 {
        let n = pointee.work.spanCount - 1
        pointee.work.spanCount = n
        let p = UnsafeMutableRawPointer(pointee.work.spans).assumingMemoryBound(to: UInt.self)[n]
        let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), p).unsafelyUnwrapped  // (as a classic scanobject)
        pointee.work.objectsScanned += 1
        scanRange(h, p, p &+ UInt(s.pointee.elemsize))
        continue
      }
      if pointee.work.spanCount > 0 {
        let s = pointee.work.spans[pointee.work.spanHead].unsafelyUnwrapped
        pointee.work.spanHead = (pointee.work.spanHead + 1) % pointee.work.spanLimit
        pointee.work.spanCount -= 1
        s.pointee.gcqueued = 0
        scanSpan(h, s)
        continue
      }
      return
    }
  }

  /// Green Tea: scans every object of s marked since s was last scanned, in address order.
  func scanSpan(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr) {
    pointee.work.spansScanned += 1
    let es = UInt(s.pointee.elemsize), base = s.pointee.startAddr
    for w in 0..<s.usedWords {
      let scanned = s.localWord(w)
      var todo = s.gcmarkWord(w).pointee & ~scanned.pointee
      if todo == 0 { continue }
      scanned.pointee |= todo
      while todo != 0 {
        let i = UInt(w &<< 6 &+ todo.trailingZeroBitCount)
        todo &= todo &- 1
        let p = base &+ i &* es
        pointee.work.objectsScanned += 1
        scanRange(h, p, p &+ es)
      }
    }
  }

  /// Overflow recovery: queues every collected scan span (and large object) with objects marked
  /// and not yet scanned; sets overflow again if the queues fill meanwhile.
  func requeueUnscanned(_ h: UnsafeMutablePointer<MHeap>) {
    var it = h.pointee.allspans
    while let s = it {
      it = s.pointee.allnext
      if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse || s.spanClass.noscan { continue }
      if s.isLarge {
        if s.gcmarkWord(0).pointee & 1 != 0 && s.localWord(0).pointee & 1 == 0 { pushLarge(s) }
        continue
      }
      if pointee.work.objectQueue {
        for w in 0..<s.usedWords {
          var todo = s.gcmarkWord(w).pointee & ~s.localWord(w).pointee
          while todo != 0 && !pointee.work.overflow {
            let i = w &<< 6 &+ todo.trailingZeroBitCount
            todo &= todo &- 1
            pushObject(s, w, 1 &<< UInt64(i & 63), s.pointee.startAddr &+ UInt(i) &* UInt(s.pointee.elemsize))
          }
        }
        continue
      }
      if s.pointee.gcqueued != 0 { continue }
      for w in 0..<s.usedWords where s.gcmarkWord(w).pointee & ~s.localWord(w).pointee != 0 {
        if enqueueSpan(s) { s.pointee.gcqueued = 1 } else { pointee.work.overflow = true }
        break
      }
    }
  }
}
