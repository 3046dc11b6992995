// OS: the allocator's only contact with the kernel (Go's mem_linux.go), and its diagnostics.
// See Malloc.swift for an overview.
//
// `sysMap` hands out zeroed, demand-paged memory (MAP_NORESERVE): address space is cheap, only
// touched pages cost RSS. `fatal`/`report` write one line to stderr without allocating.
// Nothing here calls malloc.
import CGoAllocShim

@inline(__always) func roundUp(_ n: Int, _ align: Int) -> Int { (n + align - 1) & ~(align - 1) }
@inline(__always) func roundUp(_ n: UInt, _ align: UInt) -> UInt { (n &+ align &- 1) & ~(align &- 1) }

/// Zeroed memory from the OS, or nil.
func sysMap(_ bytes: Int) -> UnsafeMutableRawPointer? { goalloc_sys_map(bytes) }

/// Writes "goalloc: <op>(): <what>: 0x<addr>" and aborts.
func fatal(_ op: StaticString, _ what: StaticString, _ addr: UInt = 0) -> Never {
  report(op, what, addr)
  goalloc_abort()
}
func report(_ op: StaticString, _ what: StaticString, _ addr: UInt) {
  op.withUTF8Buffer { o in
    what.withUTF8Buffer { w in
      goalloc_report(UnsafeRawPointer(o.baseAddress!).assumingMemoryBound(to: CChar.self),
                     UnsafeRawPointer(w.baseAddress!).assumingMemoryBound(to: CChar.self), addr)
    }
  }
}
/// Writes a static string to a file descriptor.
func writeStatic(_ fd: Int32, _ s: StaticString) {
  s.withUTF8Buffer { b in
    goalloc_write_len(fd, UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self), b.count)
  }
}
