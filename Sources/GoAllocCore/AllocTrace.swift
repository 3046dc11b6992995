// AllocTrace: GOALLOC_DEBUG=allocfreetrace=1|FILE records every allocation and free (Go's
// allocfreetrace, which Go removed in 1.23; here it is a first-class tool).
//
// Format (text, one event per line, addresses 0x-hex, the rest decimal):
//   # goalloc allocfreetrace v1
//   a <tid> <addr> <size> <class> [<pc> ...]    allocation of <size> requested bytes
//   f <tid> <addr> [<pc> ...]                   free
//   g <n> <ns> <before> <after> <marked> <goal> <pause ns> <forced>
//                                               a collection of the GC mode (MGC): its number
//                                               (NumGC), ns since the GC mode started, the
//                                               collected heap (bytes) when it began and after
//                                               it, bytes marked, the next heap goal, its pause,
//                                               1 if the program asked for it
//   # map <start> <end> <offset> <path>        at the end: executable mappings, to symbolize pcs
// class is the size class (0: large object); realloc appears as its allocation and free (an
// in-place realloc as "f" then "a" of the same address). pcs (return addresses, innermost first)
// follow when GOALLOC_DEBUG has tracestack=1. Events of all threads go through one buffer under
// one lock, so the file order is a valid order of the program's requests: a free is written
// before the memory can be handed out again, an allocation after it was made. A collection is
// written when it has ended (the world restarted: a stopped thread may hold the trace's lock),
// so an event of another thread just after it may come before its line. Collected objects
// themselves are not traced (GC allocations take no malloc path; sweeps free them in bulk).
//
// Instrumented mode: while tracing or heap profiling is on, a thread's cache is kept out of the
// fast-path TLS slot, so every malloc and free takes the slow path that records it. Allocations
// made before the library's constructor ran (the dynamic loader's) are not in the trace; their
// frees are (a replay skips frees of unknown addresses).
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

public struct Instrumentation {
  var _first: UInt64 = 0       // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0       // sample table
  var enabled: UInt32 = 0      // atomic: tracing or profiling is on
  var configured: UInt32 = 0   // atomic: GOALLOC_DEBUG was read for these settings
  var traceFD: Int32 = -1
  var traceStacks: UInt32 = 0
  var profileRate: UInt64 = 0  // heap profile: mean bytes between samples; 0 = off
  var samples: UnsafeMutablePointer<UInt>? = nil  // HeapProfile's table
  var liveSamples = 0
  var droppedSamples = 0
}

nonisolated(unsafe) var instrumentationConfigLock: LockWord = 0

/// Opens the file of GOALLOC_DEBUG setting `key` (value `path`); on failure, one warning line
/// naming the setting (the check at start found it writable, but it may have changed since).
func openSettingOutput(_ key: StaticString, _ path: UnsafePointer<CChar>) -> Int32 {
  let fd = goalloc_open_output(path)
  if fd < 0 {
    let err = -fd
    key.withUTF8Buffer { k in
      goalloc_warn_output(UnsafeRawPointer(k.baseAddress!).assumingMemoryBound(to: CChar.self), path, err)
    }
  }
  return fd
}

extension UnsafeMutablePointer where Pointee == MHeap {
  @inline(__always) var instrumented: Bool { atomicLoad32(&pointee.instrumentation.pointee.enabled) != 0 }

  /// Reads allocfreetrace, tracestack, memprofile and memprofilerate from GOALLOC_DEBUG once the
  /// environment is readable, and switches the calling thread to instrumented mode if needed.
  func configureInstrumentation() {
    let ins = pointee.instrumentation
    if atomicLoad32(&ins.pointee.configured) != 0 { return }
    lockAcquire(&instrumentationConfigLock)
    defer { lockRelease(&instrumentationConfigLock) }
    if atomicLoad32(&ins.pointee.configured) != 0 || goalloc_debug_flags_from_env() == 0 { return }
    var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
              UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
      (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &buf) { b in
      let s = b.baseAddress!.assumingMemoryBound(to: CChar.self)
      var on = false
      if goalloc_debug_value("allocfreetrace", s, b.count) != 0 {
        let fd = openSettingOutput("allocfreetrace", s)
        if fd >= 0 {
          ins.pointee.traceFD = fd
          writeStatic(fd, "# goalloc allocfreetrace v1\n")
          on = true
        }
      }
      if goalloc_debug_value("tracestack", s, b.count) != 0 && s[0] == 0x31 { ins.pointee.traceStacks = 1 }
      if goalloc_debug_value("memprofile", s, b.count) != 0 {
        var rate: UInt64 = 512 << 10
        if goalloc_debug_value("memprofilerate", s, b.count) != 0 {
          var v: UInt64 = 0
          var i = 0
          while s[i] >= 0x30 && s[i] <= 0x39 { v = v * 10 + UInt64(s[i] - 0x30); i += 1 }
          if v > 0 { rate = v }
        }
        if startHeapProfile(rate: rate) { on = true }
      }
      if on { atomicStore32(&ins.pointee.enabled, 1) }
    }
    atomicStore32(&ins.pointee.configured, 1)
    if instrumented, let raw = goalloc_tls_get() {
      goalloc_tls_set(nil)
      goalloc_tls_slow_set(raw)
    }
  }

  /// Records an allocation (instrumented mode).
  func recordAlloc(_ c: MCache, _ p: UInt, size: Int, sizeclass: Int, slot: Int) {
    let ins = pointee.instrumentation
    var pcs: (UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt,
              UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt) =
      (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &pcs) { b in
      let frames = b.baseAddress!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
      var n: Int32 = 0
      var haveStack = false
      let fd = ins.pointee.traceFD
      if fd >= 0 {
        if ins.pointee.traceStacks != 0 { n = goalloc_backtrace(frames, 32, 3); haveStack = true }
        goalloc_trace_event(fd, 0x61, goalloc_gettid(), p, size, UInt32(sizeclass), frames, n)
      }
      if ins.pointee.profileRate != 0 {
        let hd = c.header
        hd.pointee.nextSample -= slot
        if hd.pointee.nextSample < 0 {
          hd.pointee.nextSample = Int(goalloc_next_sample(ins.pointee.profileRate))
          if !haveStack { n = goalloc_backtrace(frames, 32, 3) }
          addSample(p, size: size, frames: frames, count: Int(n))
        }
      }
    }
  }

  /// Records a free (instrumented mode), before the memory can be reused.
  func recordFree(_ p: UInt) {
    let ins = pointee.instrumentation
    let fd = ins.pointee.traceFD
    if fd >= 0 {
      if ins.pointee.traceStacks != 0 {
        var pcs: (UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt) =
          (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &pcs) { b in
          let frames = b.baseAddress!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
          let n = goalloc_backtrace(frames, 16, 3)
          goalloc_trace_event(fd, 0x66, goalloc_gettid(), p, 0, 0, frames, n)
        }
      } else {
        goalloc_trace_event(fd, 0x66, goalloc_gettid(), p, 0, 0, nil, 0)
      }
    }
    if ins.pointee.profileRate != 0 { removeSample(p) }
  }

  /// Records a collection of the GC mode (after it, world running) when the trace is on.
  func recordCollection(_ n: UInt64, ns: UInt64, before: UInt64, after: UInt64, marked: UInt64,
                        goal: UInt64, pauseNs: UInt64, forced: Bool) {
    if !instrumented { return }
    let fd = pointee.instrumentation.pointee.traceFD
    if fd >= 0 { goalloc_trace_gc(fd, n, ns, before, after, marked, goal, pauseNs, forced ? 1 : 0) }
  }

  /// Flushes the trace and writes the heap profile and heap map requested in GOALLOC_DEBUG.
  func finishInstrumentation() {
    goalloc_trace_flush()
    let tfd = pointee.instrumentation.pointee.traceFD
    if tfd >= 0 && pointee.instrumentation.pointee.traceStacks != 0 { goalloc_write_maps(tfd) }
    var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
              UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
      (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &buf) { b in
      let s = b.baseAddress!.assumingMemoryBound(to: CChar.self)
      if pointee.instrumentation.pointee.profileRate != 0 && goalloc_debug_value("memprofile", s, b.count) != 0 {
        let fd = openSettingOutput("memprofile", s)
        if fd >= 0 { writeHeapProfile(to: fd); goalloc_close_output(fd) }
      }
      if goalloc_debug_value("heapmap", s, b.count) != 0 {
        let fd = openSettingOutput("heapmap", s)
        if fd >= 0 { writeHeapMap(to: fd); goalloc_close_output(fd) }
      }
    }
  }
}
