// MGCDirty: the pages written while a concurrent mark ran (bdwgc's virtual dirty bits, its
// "VDB"), and mark termination's rescan of the marked objects on them (MGCConcurrent).
//
// A *tracking period* starts before the cycle's first stop (`gcDirtyBegin`, the world running):
// the heap's ranges (MHeap.ranges) are listed in `dirtyRanges` and write-protected for tracking
// by the mechanism dirty.c chose once per process (goalloc_dirty.h): userfaultfd's asynchronous
// write-protect read back with PAGEMAP_SCAN (uffd), soft-dirty bits (softdirty), read-only pages
// and a SIGSEGV handler (mprotect: only collected scan spans' pages, gcDirtyMarkPages; the period
// ends just after stop 2, gcDirtyEnd, which makes them writable again), or nothing
// (full: every page reads written, so mark termination rescans every marked object: a full
// re-mark in the second stop, correct and slow). A range the mechanism refused, and heap memory
// added after the period began (a range not listed, or grown past its listed end), reads
// written as a whole. The mechanism is reported in gctrace and the stats.
// At mark termination (`gcRescanDirty`, world stopped) each written 4 KiB page of the heap is
// looked up (its span): on a collected scan span every marked object overlapping the page, and
// on a malloc scan span (the roots of uncollectable memory) every live slot overlapping it, is
// scanned again over the part of it on the page. Noscan spans and free pages cost the lookup
// only. Thread stacks, the images' segments and the added roots are not tracked: they are
// rescanned whole (MGCConcurrent).
// Invariants: a page not reported written was not written by any thread, nor by the kernel on a
// thread's behalf (uffd, soft-dirty: read(2) into the heap counts as a store; mprotect: it fails
// with EFAULT on a protected page), since the period began; the collector's lock is held from the
// period's start to its end.
import CGoAllocShim

// Preclean (uffd only; bdwgc's and the mostly-concurrent papers' precleaning): after the
// concurrent mark, the world still running, the written pages are read and write-protected again
// in one step (PAGEMAP_SCAN with WP_MATCHING: a write after that step is reported at stop 2),
// and every *allocated* slot on them (marked or not: an object allocated during the mark is not
// marked until its span leaves its cache or stop 2, and must not be missed; an unmarked old
// object only keeps what it points to for one more cycle) is scanned, then the workers drain.
// Stop 2 then rescans only what was written after that. A page written before the preclean and
// not after holds nothing the preclean did not see: its writes precede the step that reported
// it, and an object's slot is allocated (freeindex moved, under x86's store order) before any
// write to it.

/// Flag in a dirtyRanges low word: the mechanism refused this range (it reads written whole).
let dirtyUntracked: UInt = 1

extension UnsafeMutablePointer where Pointee == GCState {
  /// Starts the tracking period: lists the heap's ranges and write-protects them. The world
  /// runs; the collector's lock is held.
  func gcDirtyBegin(_ h: UnsafeMutablePointer<MHeap>) {
    if pointee.dirtyMode < 0 { pointee.dirtyMode = Int32(goalloc_dirty_mode()) }
    gcDirtyEnd(h)  // (one a cycle left open)
    if barrierMode {  // (gcdirty=barrier: nothing tracked, MGCBarrier)
      pointee.ndirtyRanges = 0
      return
    }
    lockAcquire(&h.pointee.lock)
    var n = 0
    var r = h.pointee.ranges
    while let x = r, n < GCState.maxDirtyRanges {
      pointee.dirtyRanges[2 * n] = x.pointee.base
      pointee.dirtyRanges[2 * n + 1] = x.pointee.end
      n += 1
      r = x.pointee.next
    }
    lockRelease(&h.pointee.lock)
    pointee.ndirtyRanges = n
    let began = goalloc_dirty_begin() == 0
    for i in 0..<n {
      let lo = pointee.dirtyRanges[2 * i], hi = pointee.dirtyRanges[2 * i + 1]
      if !began || goalloc_dirty_protect(lo, hi) != 0 { pointee.dirtyRanges[2 * i] = lo | dirtyUntracked }
    }
    if began && pointee.dirtyMode == Int32(GOALLOC_DIRTY_MPROTECT) { gcDirtyMarkPages(h) }
  }

  /// mprotect: what the heap knows, under its lock (spans cannot change meanwhile; one allocated
  /// later reads written, goalloc_dirty_span_alloc): the usable pages of collected scan spans
  /// are made read-only; free pages and noscan spans need no rescan unless written; the rest
  /// (malloc scan spans: roots, rescanned; guard pages) read written and are never protected,
  /// so a read(2) into malloc'd or pointer-free memory never meets EFAULT.
  private func gcDirtyMarkPages(_ h: UnsafeMutablePointer<MHeap>) {
    lockAcquire(&h.pointee.lock)
    for i in 0..<pointee.ndirtyRanges {
      let raw = pointee.dirtyRanges[2 * i], hi = pointee.dirtyRanges[2 * i + 1]
      if raw & dirtyUntracked != 0 { continue }
      var p = raw
      var runLo = p, kind: Int32 = -1  // the run being gathered: 1 track, 0 clean, -1 neither
      while p < hi {
        var k: Int32 = 0, next = p &+ UInt(pageSize), usableEnd = next
        if let s = spanOfIndex(h.pointee.arenas, p) {
          let start = s.pointee.startAddr
          next = Swift.min(hi, start &+ UInt(s.pointee.npages &* pageSize))
          let odd = next <= p  // (a record being changed: that page skipped)
          if odd { next = p &+ UInt(pageSize) }
          usableEnd = odd ? next : Swift.min(next, next &- UInt(Int(s.pointee.guardPages) &* pageSize))
          if odd || atomicLoad32(&s.pointee.state) != spanInUse || s.pointee.elemsize == 0 {
            k = -1
          } else {
            k = s.spanClass.noscan ? 0 : s.pointee.collected != 0 ? 1 : -1
          }
        }
        if usableEnd > p && k != kind { markRun(runLo, p, kind); runLo = p; kind = k }
        if usableEnd < next { markRun(runLo, usableEnd, kind); runLo = usableEnd; kind = -1 }
        p = next
      }
      markRun(runLo, hi, kind)
    }
    lockRelease(&h.pointee.lock)
  }

  @inline(__always) private func markRun(_ lo: UInt, _ hi: UInt, _ kind: Int32) {
    if kind >= 0 && lo < hi { _ = goalloc_dirty_mark_pages(lo, hi, kind) }
  }

  /// Ends the tracking period once stop 2 is over (the world running; the collector's lock held):
  /// mprotect's pages writable again, under the heap lock (no guard page changes meanwhile).
  func gcDirtyEnd(_ h: UnsafeMutablePointer<MHeap>) {
    if pointee.dirtyMode != Int32(GOALLOC_DIRTY_MPROTECT) { return }
    lockAcquire(&h.pointee.lock)
    goalloc_dirty_end()
    lockRelease(&h.pointee.lock)
  }

  /// A preclean round's scan (world running): the 4 KiB pages it found written and rescanned,
  /// or -1 when the mechanism cannot re-protect (stop 2 then does it all).
  func gcPrecleanWritten(_ h: UnsafeMutablePointer<MHeap>) -> Int {
    if pointee.dirtyMode != Int32(GOALLOC_DIRTY_UFFD) { return -1 }
    var pages = 0
    let m = marker0
    let key = h.pointee.freeKey
    for i in 0..<pointee.ndirtyRanges {
      let raw = pointee.dirtyRanges[2 * i], hi = pointee.dirtyRanges[2 * i + 1]
      if raw & dirtyUntracked != 0 { continue }
      var at = raw
      while at < hi {
        let before = at
        let n = goalloc_dirty_scan_reset(&at, hi, pointee.dirtyOut, GCState.maxDirtyRanges)
        if n < 0 || (n == 0 && at <= before) {
          pointee.dirtyRanges[2 * i] = raw | dirtyUntracked  // (stop 2 rescans it whole)
          break
        }
        for j in 0..<n {
          let lo = pointee.dirtyOut[2 * j], hi = pointee.dirtyOut[2 * j + 1]
          _ = m.rescanWritten(lo, hi, key: key, allocated: true)
          pages &+= Int((hi &- lo) >> 12)
        }
      }
    }
    return pages
  }

  /// Mark termination: scans again what lies on pages written since the period began (through
  /// worker 0, whose queues the drain then empties). World stopped, every lock held.
  func gcRescanDirty(_ h: UnsafeMutablePointer<MHeap>) {
    let m = marker0
    let key = h.pointee.freeKey
    var pages: UInt64 = 0, bytes: UInt64 = 0
    var r = h.pointee.ranges
    while let x = r {
      r = x.pointee.next
      var cur = x.pointee.base
      let end = x.pointee.end
      for i in 0..<pointee.ndirtyRanges {
        let raw = pointee.dirtyRanges[2 * i], slo = raw & ~dirtyUntracked, shi = pointee.dirtyRanges[2 * i + 1]
        if shi <= cur || slo >= end { continue }
        if cur < slo {
          bytes &+= m.rescanWritten(cur, slo, key: key)
          pages &+= UInt64((slo - cur) >> 12)
        }
        let a = Swift.max(cur, slo), b = Swift.min(end, shi)
        if raw & dirtyUntracked != 0 {
          bytes &+= m.rescanWritten(a, b, key: key)
          pages &+= UInt64((b - a) >> 12)
        } else {
          var at = a
          while at < b {
            let before = at
            let n = goalloc_dirty_scan(&at, b, pointee.dirtyOut, GCState.maxDirtyRanges)
            if n < 0 || (n == 0 && at <= before) {
              bytes &+= m.rescanWritten(before, b, key: key)
              pages &+= UInt64((b - before) >> 12)
              break
            }
            for j in 0..<n {
              let lo = pointee.dirtyOut[2 * j], hi = pointee.dirtyOut[2 * j + 1]
              bytes &+= m.rescanWritten(lo, hi, key: key)
              pages &+= UInt64((hi - lo) >> 12)
            }
          }
        }
        cur = b
      }
      if cur < end {
        bytes &+= m.rescanWritten(cur, end, key: key)
        pages &+= UInt64((end - cur) >> 12)
      }
    }
    pointee.lastDirtyPages = pages
    pointee.lastDirtyBytes = bytes
  }
}

extension UnsafeMutablePointer where Pointee == GCMarker {
  /// Scans, within the written heap memory [lo, hi), the marked objects of collected scan spans
  /// (with `allocated`, the world running: every allocated one) and the live slots of malloc
  /// scan spans; returns the bytes scanned.
  func rescanWritten(_ lo: UInt, _ hi: UInt, key: UInt, allocated: Bool = false) -> UInt64 {
    var bytes: UInt64 = 0
    var p = lo
    while p < hi {
      guard let s = spanOfIndex(pointee.arenas, p) else {
        p = (p | UInt(pageSize - 1)) &+ 1
        continue
      }
      let start = s.pointee.startAddr
      let b = Swift.min(hi, start &+ UInt(s.pointee.npages &* pageSize))
      defer { p = b }
      if atomicLoad32(&s.pointee.state) != spanInUse || s.spanClass.noscan { continue }
      let es = UInt(s.pointee.elemsize)
      if es == 0 { continue }  // (a malloc span being set up or freed meanwhile: preclean)
      let collected = s.pointee.collected != 0
      if s.isLarge {
        let a2 = Swift.max(p, start), b2 = Swift.min(b, start &+ es)
        if a2 < b2 && (!collected || allocated || s.gcmarkWord(0).pointee & 1 != 0) {
          scanRange(a2, b2)
          bytes &+= UInt64(b2 - a2)
        }
        continue
      }
      let limit = collected ? s.pointee.nelems : Int(s.highWater)
      var i = p > start ? Int((p - start) / es) : 0
      while i < limit {
        let o = start &+ UInt(i) &* es
        if o >= b { break }
        var live: Bool
        if collected {
          let w = i &>> 6, bit: UInt64 = 1 &<< UInt64(i & 63)
          live = (allocated ? s.isAllocated(i) : atomicLoadRelaxed64(s.gcmarkWord(w)) & bit != 0)
            && atomicLoadRelaxed64(s.freeWord(w)) & bit == 0
        } else {
          live = !(es >= 16 && MCache.isFreeMark(UnsafePointer<UInt>(bitPattern: o).unsafelyUnwrapped[1], key: key))
        }
        if live {
          let a2 = Swift.max(o, p), b2 = Swift.min(o &+ es, b)
          scanRange(a2, b2)
          bytes &+= UInt64(b2 - a2)
        }
        i += 1
      }
      balance()
    }
    return bytes
  }
}
