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

/// The heap's own metadata was overwritten (a buffer overflow or a write after free reached a
/// freed object): one line, "goalloc: heap corruption detected: <what> 0x<addr>", and abort,
/// whatever GOALLOC_DEBUG says (going on would hand out memory an attacker chose).
func heapCorrupted(_ what: StaticString, _ addr: UInt) -> Never {
  what.withUTF8Buffer { w in
    goalloc_report_corruption(UnsafeRawPointer(w.baseAddress!).assumingMemoryBound(to: CChar.self), addr)
  }
  goalloc_abort()
}
