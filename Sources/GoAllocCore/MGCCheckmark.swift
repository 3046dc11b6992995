// MGCCheckmark: GOALLOC_DEBUG=gccheckmark=1 (Go's debug.gccheckmark): after every mark, before
// the specials and the flip, the world still stopped, everything is marked again from the roots
// with the world stopped, into fresh mark bits, and any object that mark reaches but the
// cycle's mark (concurrent or not) left unmarked aborts the process with one line naming it.
// The cycle's bits are kept aside meanwhile (a mapping of one word per mark word of every
// in-use collected span, walked twice in the same order: the world is stopped) and ORed back
// afterwards, so the sweep frees exactly what it would have freed without the check (objects
// allocated black but unreachable are in the cycle's bits, not an error).
// Invariants: nothing allocates; the spans do not change between the two walks.
import CGoAllocShim

extension UnsafeMutablePointer where Pointee == GCState {
  func gcCheckmark(_ h: UnsafeMutablePointer<MHeap>, callerSP: UInt, me: Int) {
    var words = 0
    var walk = SpanWalk(h)
    while let s = walk.next() {
      if s.pointee.collected != 0 && atomicLoad32(&s.pointee.state) == spanInUse { words += s.isLarge ? 1 : s.usedWords }
    }
    let bytes = roundUp(Swift.max(words, 1) * 8, 4096)
    guard let mem = sysMap(bytes) else {
      writeStatic(2, "goalloc: gc: checkmark: no memory for the saved mark bits; this cycle is not checked\n")
      return
    }
    let saved = mem.bindMemory(to: UInt64.self, capacity: Swift.max(words, 1))
    var k = 0
    walk = SpanWalk(h)
    while let s = walk.next() {
      if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse { continue }
      for w in 0..<(s.isLarge ? 1 : s.usedWords) {
        saved[k] = s.gcmarkWord(w).pointee
        s.gcmarkWord(w).pointee = 0
        s.localWord(w).pointee = 0
        k += 1
      }
    }
    let work = pointee.work
    let marked = work.pointee.markedBytes, spans = work.pointee.spansScanned, objects = work.pointee.objectsScanned
    let stacks = pointee.stackBytes, globals = pointee.globalsBytes
    gcMark(h, callerSP: callerSP, me: me, workers: work.pointee.nworkers)
    var missed = 0
    var first: UInt = 0, firstSize = 0
    k = 0
    walk = SpanWalk(h)
    while let s = walk.next() {
      if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse { continue }
      for w in 0..<(s.isLarge ? 1 : s.usedWords) {
        let extra = s.gcmarkWord(w).pointee & ~saved[k]
        if extra != 0 {
          if missed == 0 {
            first = s.pointee.startAddr &+ UInt((w &<< 6 &+ extra.trailingZeroBitCount) &* s.pointee.elemsize)
            firstSize = s.pointee.elemsize
          }
          missed += extra.nonzeroBitCount
        }
        s.gcmarkWord(w).pointee |= saved[k]
        s.localWord(w).pointee = s.gcmarkWord(w).pointee
        k += 1
      }
    }
    goalloc_sys_unmap(mem, bytes)
    work.pointee.markedBytes = marked
    work.pointee.spansScanned = spans
    work.pointee.objectsScanned = objects
    pointee.stackBytes = stacks
    pointee.globalsBytes = globals
    if missed > 0 {
      writeStatic(2, "goalloc: gc: checkmark: ")
      goalloc_write_u64(2, UInt64(missed))
      writeStatic(2, " reachable object(s) left unmarked by the mark, the first at ")
      goalloc_write_hex(2, UInt64(first))
      writeStatic(2, " (")
      goalloc_write_u64(2, UInt64(firstSize))
      writeStatic(2, " bytes); cycle ")
      goalloc_write_u64(2, UInt64(atomicLoad32(&pointee.numGC) &+ 1))
      if pointee.conc { writeStatic(2, " (concurrent)\n") } else { writeStatic(2, " (stopped)\n") }
      goalloc_abort()
    }
    pointee.checkmarks &+= 1
  }
}
