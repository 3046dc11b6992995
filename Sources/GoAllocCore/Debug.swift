// Debug: the GOALLOC_DEBUG settings a heap runs with, and the report of an invalid free.
// See Malloc.swift for an overview.
//
// Every tier may report a bad free (a span's fold finds late double frees), so this sits below
// them all: it touches only the heap's `debugFlags` and `badFrees` words and writes one line to
// stderr (OS.swift). The settings are read from the environment (CGoAllocShim) once it exists.
import CGoAllocShim

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Reports an invalid free; aborts unless GOALLOC_DEBUG=badfree=warn.
  func badFree(_ op: StaticString, _ what: StaticString, _ addr: UInt) {
    atomicAdd64(&pointee.badFrees, 1)
    if debugFlags & UInt32(GOALLOC_DEBUG_PARSED) == 0 {
      debugFlags = goalloc_debug_flags_from_env()
    }
    if debugFlags & UInt32(GOALLOC_DEBUG_BADFREE_WARN) != 0 {
      report(op, what, addr)
      return
    }
    fatal(op, what, addr)
  }

  /// GOALLOC_DEBUG flags (read and written atomically: any thread may refresh them).
  public var debugFlags: UInt32 {
    get { atomicLoad32(&pointee.debugFlags) }
    nonmutating set { atomicStore32(&pointee.debugFlags, newValue) }
  }
}
