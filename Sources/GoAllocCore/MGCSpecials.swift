// MGCSpecials: *specials*, records attached to single collected objects (Go's mspan.specials,
// mheap.go): finalizers and cleanups (MFinal.swift), weak handles and bdwgc's disappearing
// links (Weak.swift); what a cycle does with them is MGCSpecialsMark.swift. An object without
// any pays nothing: no header, no bit, no test on the malloc or free fast paths.
//
// A record (`Special`, 64 bytes, from this file's FixAlloc over its own PersistentAlloc, never
// from the heap) sits on the list of the span holding its object, sorted by the byte offset it
// was set at. A span with records has an entry in the *specials table*, and MSpan.specials is
// the entry's index (0: none; MSpan has no room for a pointer); the table doubles as the list
// of spans that have specials, so the collector visits only those. An entry also keeps its
// list's tail: records set in address order (the usual case) are appended in O(1). bdwgc's disappearing links are also found by their link's
// address, in the *link index* (open addressing; key = link | 1 for a long link).
//
// Locking: everything here is guarded by the collector's lock (GCState.lock). A cycle holds it
// from before the stop until the world runs again, so a stopped thread never holds it; nothing
// done under it allocates from the heap (so no collection can start inside). The free path
// reads MSpan.specials without the lock, as a hint: nonzero, it takes the lock and looks.
//
// Invariants: an entry names its span and its list is non-empty; a listed record belongs to an
// object of that span that is allocated and not freed; every link record is in the link index
// once, and on its target's list iff `attached`; after a cycle's mark termination no record
// belongs to an unmarked object.
import CGoAllocShim

typealias SpecialPtr = UnsafeMutablePointer<Special>

/// One special. `next` stays at offset 0: a list is walked through pointers to its links.
struct Special {
  var next: SpecialPtr? = nil
  var offset: UInt = 0        // from the span's start: the address the special was set at
  var kind: UInt8 = 0         // SpecialKind
  var flags: UInt8 = 0        // SpecialFlag
  var fn: UnsafeRawPointer? = nil  // finalizer: void (*)(void *obj, void *arg); cleanup: void (*)(void *arg)
  var arg: UInt = 0           // finalizer, cleanup: the argument; weak: the handle; link: the link's address
  var id: UInt64 = 0          // cleanup: the cancel id (never reused)
  var obj: UInt = 0           // queued finalizer: the object; link: the target's address
}

enum SpecialKind {
  static let finalizer: UInt8 = 1
  static let cleanup: UInt8 = 2
  static let weak: UInt8 = 3      // goalloc_gc_weak_make's handle (a collected noscan word)
  static let link: UInt8 = 4      // bdwgc's disappearing link (a word of the program's)
}

enum SpecialFlag {
  // Finalizers: who runs them, and how they are ordered (MGCSpecialsMark).
  static let bdwgc: UInt8 = 1          // run by GC_invoke_finalizers (else the cleanup thread)
  static let orderMask: UInt8 = 6
  static let orderGo: UInt8 = 0        // SetFinalizer: the object's referents are roots
  static let orderAfterLinks: UInt8 = 2  // GC_register_finalizer: the same, once links are cleared
  static let ignoreSelf: UInt8 = 4     // GC_register_finalizer_ignore_self
  static let noOrder: UInt8 = 6        // GC_register_finalizer_no_order
  // Cleanups: GOALLOC_DEBUG=cleanupcheck's marks (MGCSpecialsMark).
  static let suspect: UInt8 = 0x40
  static let reported: UInt8 = 0x80
  // Links.
  static let long: UInt8 = 1           // GC_register_long_link: cleared when the object is freed
  static let attached: UInt8 = 2       // the target is a collected object (else never cleared)
}

/// One span with specials: its list's head (at offset 0, like Special.next), its last record
/// (records are mostly set in address order: appending is O(1)) and the span.
struct SpecialsEntry {
  var head: SpecialPtr? = nil
  var tail: SpecialPtr? = nil
  var span: SpanPtr? = nil
  var nextFree: UInt32 = 0
}

/// The spans with specials, in table order (mark termination's walks, MGCSpecialsMark): a
/// span's entry may be released while the walk is at it.
struct SpecialSpans {
  let sp: UnsafeMutablePointer<SpecialsState>
  var i = 0
  init(_ sp: UnsafeMutablePointer<SpecialsState>) { self.sp = sp }
  /// The next span with specials, and its first record.
  mutating func next() -> (span: SpanPtr, head: SpecialPtr?)? {
    while true {
      i += 1
      if i >= sp.pointee.used { return nil }
      let e = sp.pointee.table.unsafelyUnwrapped + i
      if let s = e.pointee.span { return (s, e.pointee.head) }
    }
  }
}

/// Every record of every span with specials, read where it is (none is taken off meanwhile).
struct SpecialRecords {
  var spans: SpecialSpans
  var span: SpanPtr? = nil
  var at: SpecialPtr? = nil
  init(_ sp: UnsafeMutablePointer<SpecialsState>) { spans = SpecialSpans(sp) }
  mutating func next() -> (span: SpanPtr, record: SpecialPtr)? {
    while true {
      if let r = at, let s = span {
        at = r.pointee.next
        return (s, r)
      }
      guard let n = spans.next() else { return nil }
      span = n.span
      at = n.head
    }
  }
}

/// The specials of the process-wide heap, mapped on first use.
struct SpecialsState {
  var _first: UInt64 = 0
  var persistent = PersistentAlloc()
  var records = FixAlloc(size: MemoryLayout<Special>.stride)
  var table: UnsafeMutablePointer<SpecialsEntry>? = nil
  var capacity = 0
  var used = 1                 // entries [1, used) handed out at some time
  var freeEntry: UInt32 = 0    // a free entry (linked through nextFree), 0: none
  var spans = 0                // entries in use
  var count = 0                // records on spans' lists
  var finalizers = 0           // of them, finalizers (a cycle skips the steps a kind needs
  var cleanups = 0             // when there is none of it)
  var weaks = 0                // weak handles and links
  var nextID: UInt64 = 0       // the last cleanup id handed out
  var links: UnsafeMutablePointer<UInt>? = nil  // [2 * linkCapacity]: key, record (key 0: empty)
  var linkCapacity = 0
  var nlinks = 0
  // The queues (MFinal): records taken off their span, linked through `next`, oldest first.
  var runHead: SpecialPtr? = nil   // for the cleanup thread
  var runTail: SpecialPtr? = nil
  var bdwHead: SpecialPtr? = nil   // for GC_invoke_finalizers
  var bdwTail: SpecialPtr? = nil
  var pending: UInt64 = 0      // atomic: the cleanup thread's queued and running calls
  var wake: UInt32 = 0         // the cleanup thread's futex word (bumped under the lock)
  var runner: UInt32 = 0       // atomic: 0 no cleanup thread, 1 started
  var sys = 0                  // bytes mapped for the table and the link index
  // Statistics (lock): calls queued and run, weak handles and links cleared by cycles.
  var queued: UInt64 = 0
  var ran: UInt64 = 0
  var cleared: UInt64 = 0
}

nonisolated(unsafe) var specialsWord: UInt = 0

/// The specials state if any special was ever set (any thread; a hint without the lock).
@inline(__always) var specialsExisting: UnsafeMutablePointer<SpecialsState>? {
  UnsafeMutablePointer<SpecialsState>(bitPattern: atomicLoadUInt(&specialsWord))
}

/// The specials state, created on first use (collector's lock held). Nil when out of memory.
func specialsCreate() -> UnsafeMutablePointer<SpecialsState>? {
  if let sp = specialsExisting { return sp }
  guard let mem = sysMap(roundUp(MemoryLayout<SpecialsState>.stride, 4096)) else { return nil }
  let sp = mem.bindMemory(to: SpecialsState.self, capacity: 1)
  sp.initialize(to: SpecialsState())
  sp.pointee.sys = roundUp(MemoryLayout<SpecialsState>.stride, 4096)
  atomicStoreUInt(&specialsWord, UInt(bitPattern: sp))
  return sp
}

/// The collected object holding address a: its span, slot index and start. Nil unless a lies
/// in a slot handed out of an in-use collected span and not freed explicitly since.
func collectedObject(_ h: UnsafeMutablePointer<MHeap>, _ a: UInt) -> (span: SpanPtr, index: Int, base: UInt)? {
  guard let s = spanOfIndex(UnsafeMutableRawPointer(h.pointee.arenas), a) else { return nil }
  if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse { return nil }
  let start = s.pointee.startAddr
  if s.isLarge { return a < start &+ UInt(s.pointee.elemsize) ? (s, 0, start) : nil }
  let idx = s.objIndex(a)
  if idx >= s.pointee.nelems || UInt(bitPattern: idx) >= s.highWater { return nil }
  if atomicLoadRelaxed64(s.freeWord(idx &>> 6)) & (1 &<< UInt64(idx & 63)) != 0 { return nil }
  return (s, idx, start &+ UInt(idx &* s.pointee.elemsize))
}

extension UnsafeMutablePointer where Pointee == MSpan {
  /// The mark bit of slot i (world stopped, after the mark).
  @inline(__always) func isMarked(_ i: Int) -> Bool {
    gcmarkWord(i &>> 6).pointee & (1 &<< UInt64(i & 63)) != 0
  }
}

extension UnsafeMutablePointer where Pointee == Special {
  /// The link to the next record (a pointer to `next`, at offset 0).
  @inline(__always) var link: UnsafeMutablePointer<SpecialPtr?> {
    UnsafeMutableRawPointer(self).assumingMemoryBound(to: SpecialPtr?.self)
  }
}

extension UnsafeMutablePointer where Pointee == SpecialsState {
  // MARK: records

  /// A zeroed record, or nil when the OS refuses memory.
  func newRecord() -> SpecialPtr? {
    guard let m = pointee.records.alloc(&pointee.persistent) else { return nil }
    let r = m.bindMemory(to: Special.self, capacity: 1)
    r.initialize(to: Special())
    return r
  }

  func freeRecord(_ r: SpecialPtr) { pointee.records.free(UnsafeMutableRawPointer(r)) }

  // MARK: spans' lists

  /// The link to the first record of span s (nil when it has none).
  func listHead(_ s: SpanPtr) -> UnsafeMutablePointer<SpecialPtr?>? {
    let i = Int(s.pointee.specials)
    if i == 0 { return nil }
    return UnsafeMutableRawPointer(pointee.table.unsafelyUnwrapped + i).assumingMemoryBound(to: SpecialPtr?.self)
  }

  /// Puts r (its offset set) on span s's list, after the records of lower or equal offset.
  /// False when the table cannot grow.
  func insert(_ s: SpanPtr, _ r: SpecialPtr) -> Bool {
    if s.pointee.specials == 0 {
      guard let i = newEntry() else { return false }
      pointee.table.unsafelyUnwrapped[Int(i)] = SpecialsEntry(head: nil, tail: nil, span: s, nextFree: 0)
      atomicStore32(&s.pointee.specials, i)
      pointee.spans += 1
    }
    let e = pointee.table.unsafelyUnwrapped + Int(s.pointee.specials)
    var at = listHead(s).unsafelyUnwrapped
    if let t = e.pointee.tail, t.pointee.offset <= r.pointee.offset {
      at = t.link
    } else {
      while let q = at.pointee, q.pointee.offset <= r.pointee.offset { at = q.link }
    }
    r.pointee.next = at.pointee
    at.pointee = r
    if r.pointee.next == nil { e.pointee.tail = r }
    count(r.pointee.kind, 1)
    return true
  }

  /// Counts n records of `kind` onto (1) or off (-1) the lists.
  @inline(__always) private func count(_ kind: UInt8, _ n: Int) {
    pointee.count += n
    switch kind {
    case SpecialKind.finalizer: pointee.finalizers += n
    case SpecialKind.cleanup: pointee.cleanups += n
    default: pointee.weaks += n
    }
  }

  /// Takes the record `at` points to off span s's list (the caller frees or queues it).
  @inline(__always) func unlink(_ s: SpanPtr, _ at: UnsafeMutablePointer<SpecialPtr?>) -> SpecialPtr {
    let r = at.pointee.unsafelyUnwrapped
    at.pointee = r.pointee.next
    if r.pointee.next == nil {
      // The tail goes: the new one is the record `at` lies in (links sit at offset 0), or none.
      let e = pointee.table.unsafelyUnwrapped + Int(s.pointee.specials)
      e.pointee.tail = UnsafeMutableRawPointer(at) == UnsafeMutableRawPointer(e) ? nil : SpecialPtr(OpaquePointer(at))
    }
    r.pointee.next = nil
    count(r.pointee.kind, -1)
    return r
  }

  /// Gives span s's entry back when its list is empty.
  func releaseIfEmpty(_ s: SpanPtr) {
    let i = Int(s.pointee.specials)
    if i == 0 || pointee.table.unsafelyUnwrapped[i].head != nil { return }
    pointee.table.unsafelyUnwrapped[i] = SpecialsEntry(head: nil, tail: nil, span: nil, nextFree: pointee.freeEntry)
    pointee.freeEntry = UInt32(i)
    atomicStore32(&s.pointee.specials, 0)
    pointee.spans -= 1
  }

  /// The first record of span s at exactly `offset` of `kind`, as the link pointing to it.
  func find(_ s: SpanPtr, offset: UInt, kind: UInt8) -> UnsafeMutablePointer<SpecialPtr?>? {
    guard var at = listHead(s) else { return nil }
    if let t = pointee.table.unsafelyUnwrapped[Int(s.pointee.specials)].tail, t.pointee.offset < offset { return nil }
    while let q = at.pointee, q.pointee.offset <= offset {
      if q.pointee.offset == offset && q.pointee.kind == kind { return at }
      at = q.link
    }
    return nil
  }

  private func newEntry() -> UInt32? {
    if pointee.freeEntry != 0 {
      let i = pointee.freeEntry
      pointee.freeEntry = pointee.table.unsafelyUnwrapped[Int(i)].nextFree
      return i
    }
    if pointee.used >= pointee.capacity {
      let cap = max(256, pointee.capacity * 2)
      if cap > Int(UInt32.max) { return nil }
      let stride = MemoryLayout<SpecialsEntry>.stride
      guard let m = sysMap(cap * stride) else { return nil }
      let t = m.bindMemory(to: SpecialsEntry.self, capacity: cap)
      if let old = pointee.table {
        goalloc_memcpy(m, old, pointee.capacity * stride)
        goalloc_sys_unmap(old, pointee.capacity * stride)
        pointee.sys -= pointee.capacity * stride
      }
      pointee.table = t
      pointee.capacity = cap
      pointee.sys += cap * stride
    }
    let i = pointee.used
    pointee.used = i + 1
    return UInt32(i)
  }

  // MARK: the link index (bdwgc's disappearing links, by their address)

  @inline(__always) private func slot(_ key: UInt) -> Int {
    Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32) & (pointee.linkCapacity - 1)
  }

  /// The record registered under key (link | long), or nil.
  func linkFind(_ key: UInt) -> SpecialPtr? {
    guard let t = pointee.links else { return nil }
    var i = slot(key)
    while t[2 * i] != 0 {
      if t[2 * i] == key { return SpecialPtr(bitPattern: t[2 * i + 1]) }
      i = (i + 1) & (pointee.linkCapacity - 1)
    }
    return nil
  }

  /// Registers r under key (not present). False when the index cannot grow.
  func linkInsert(_ key: UInt, _ r: SpecialPtr) -> Bool {
    if (pointee.nlinks + 1) * 2 > pointee.linkCapacity && !growLinks() { return false }
    let t = pointee.links.unsafelyUnwrapped
    var i = slot(key)
    while t[2 * i] != 0 { i = (i + 1) & (pointee.linkCapacity - 1) }
    t[2 * i] = key
    t[2 * i + 1] = UInt(bitPattern: r)
    pointee.nlinks += 1
    return true
  }

  /// Removes key (present) from the index: linear probing's deletion, shifting the entries after it back.
  func linkRemove(_ key: UInt) {
    guard let t = pointee.links else { return }
    let mask = pointee.linkCapacity - 1
    var i = slot(key)
    while t[2 * i] != key {
      if t[2 * i] == 0 { return }
      i = (i + 1) & mask
    }
    var j = i
    while true {
      j = (j + 1) & mask
      if t[2 * j] == 0 { break }
      let home = slot(t[2 * j])
      // Entry j may move to the hole at i unless its home lies cyclically in (i, j].
      let stays = i <= j ? (i < home && home <= j) : (i < home || home <= j)
      if stays { continue }
      t[2 * i] = t[2 * j]
      t[2 * i + 1] = t[2 * j + 1]
      i = j
    }
    t[2 * i] = 0
    t[2 * i + 1] = 0
    pointee.nlinks -= 1
  }

  private func growLinks() -> Bool {
    let cap = max(64, pointee.linkCapacity * 2)
    guard let m = sysMap(cap * 16) else { return false }
    let t = m.bindMemory(to: UInt.self, capacity: 2 * cap)
    let old = pointee.links, oldCap = pointee.linkCapacity
    pointee.links = t
    pointee.linkCapacity = cap
    pointee.nlinks = 0
    pointee.sys += cap * 16
    if let old {
      for i in 0..<oldCap where old[2 * i] != 0 {
        var j = slot(old[2 * i])
        while t[2 * j] != 0 { j = (j + 1) & (cap - 1) }
        t[2 * j] = old[2 * i]
        t[2 * j + 1] = old[2 * i + 1]
        pointee.nlinks += 1
      }
      goalloc_sys_unmap(old, oldCap * 16)
      pointee.sys -= oldCap * 16
    }
    return true
  }

  /// The record in slot i of the link index (i < linkCapacity), or nil for an empty slot.
  @inline(__always) func linkRecord(at i: Int) -> SpecialPtr? {
    guard let t = pointee.links, t[2 * i] != 0 else { return nil }
    return SpecialPtr(bitPattern: t[2 * i + 1])
  }

  /// The link's key in the index.
  @inline(__always) func linkKey(_ r: SpecialPtr) -> UInt {
    r.pointee.arg | UInt(r.pointee.flags & SpecialFlag.long)
  }

  // MARK: an object's death or explicit free

  /// Clears weak handle or link r (its target is gone) and frees it; r is off its span's list.
  func dropWeak(_ r: SpecialPtr) {
    if r.pointee.kind == SpecialKind.link {
      linkRemove(linkKey(r))
      if let l = UnsafeMutablePointer<UInt>(bitPattern: r.pointee.arg) { atomicStoreUInt(l, 0) }
    } else if let cell = UnsafeMutablePointer<UInt>(bitPattern: r.pointee.arg) {
      atomicStoreUInt(cell, 0)
    }
    freeRecord(r)
  }

  /// The object [base, base + size) of span s is being freed explicitly: its finalizers and
  /// cleanups are dropped (not run), its weak handles and links cleared.
  func objectFreed(_ s: SpanPtr, _ base: UInt, _ size: Int) {
    guard var at = listHead(s) else { return }
    let lo = base &- s.pointee.startAddr, hi = lo &+ UInt(size)
    while let q = at.pointee, q.pointee.offset < hi {
      if q.pointee.offset < lo { at = q.link; continue }
      let r = unlink(s, at)
      if r.pointee.kind == SpecialKind.weak || r.pointee.kind == SpecialKind.link { dropWeak(r) } else { freeRecord(r) }
    }
    releaseIfEmpty(s)
  }
}

/// gcFreeObject's hook (MallocGC.swift): span s, whose specials index was seen nonzero, frees
/// the object at base of `size` bytes.
@inline(never)
func gcSpecialsObjectFreed(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ base: UInt, _ size: Int) {
  guard let gc = h.gcExisting, let sp = specialsExisting else { return }
  lockAcquire(&gc.pointee.lock)
  sp.objectFreed(s, base, size)
  lockRelease(&gc.pointee.lock)
}

// MARK: invariants

extension UnsafeMutablePointer where Pointee == SpecialsState {
  /// The invariants above (collector's lock held): nil when they hold, else what broke.
  func check(_ h: UnsafeMutablePointer<MHeap>) -> StaticString? {
    var spans = 0, count = 0, finalizers = 0, cleanups = 0, weaks = 0, links = 0
    var i = 1
    while i < pointee.used {
      defer { i += 1 }
      let e = pointee.table.unsafelyUnwrapped[i]
      guard let s = e.span else { continue }
      spans += 1
      if Int(s.pointee.specials) != i { return "a span and its specials entry disagree" }
      if e.head == nil { return "an empty specials entry" }
      var last: SpecialPtr? = nil
      var it = e.head
      while let r = it {
        if let l = last, l.pointee.offset > r.pointee.offset { return "a specials list out of order" }
        guard collectedObject(h, s.pointee.startAddr &+ r.pointee.offset)?.span == s else { return "a special of an object that is not allocated" }
        count += 1
        switch r.pointee.kind {
        case SpecialKind.finalizer: finalizers += 1
        case SpecialKind.cleanup: cleanups += 1
        case SpecialKind.weak: weaks += 1
        case SpecialKind.link:
          weaks += 1
          if r.pointee.flags & SpecialFlag.attached == 0 || linkFind(linkKey(r)) != r { return "a listed link not in the link index" }
        default: return "a special of no kind"
        }
        last = r
        it = r.pointee.next
      }
      if e.tail != last { return "a specials list's tail is not its last record" }
    }
    for j in 0..<pointee.linkCapacity where linkRecord(at: j) != nil { links += 1 }
    if spans != pointee.spans || count != pointee.count { return "the specials counts disagree with the lists" }
    if finalizers != pointee.finalizers || cleanups != pointee.cleanups || weaks != pointee.weaks {
      return "the specials' kind counts disagree with the lists"
    }
    if links != pointee.nlinks { return "the link count disagrees with the index" }
    return nil
  }
}

/// The specials' invariants, under the collector's lock (tests): nil when they hold.
package func _gcCheckSpecialsForTesting() -> StaticString? {
  guard let h = globalHeap(), let gc = h.gcExisting, let sp = specialsExisting else { return nil }
  lockAcquire(&gc.pointee.lock)
  defer { lockRelease(&gc.pointee.lock) }
  return sp.check(h)
}
