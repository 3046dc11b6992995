// HeapProfile: a sampled heap profile, as Go's MemProfileRate (GOALLOC_DEBUG=memprofile=FILE,
// memprofilerate=BYTES, default 512 KiB).
//
// Each thread counts down the bytes it allocates (slot sizes); when the count goes negative the
// allocation is sampled — its call stack recorded — and the next distance is drawn from an
// exponential distribution with mean `rate`, so samples form a Poisson process over allocated
// bytes. Sampled objects that are still live when the profile is written (at exit, or on demand)
// are written raw, as Go's runtime hands raw records to pprof; `goalloc profile` symbolizes them
// and writes pprof's protobuf, folded stacks or a flame graph:
//   # goalloc heapprofile v1
//   # rate <bytes>                       the mean sampling distance
//   s <size> <pc> ...                    one live sampled object: size, return addresses innermost first
//   # map <start> <end> <offset> <path>  executable mappings, to symbolize the pcs
// A reader unsamples each object as Go does: size / (1 - exp(-size/rate)) bytes.
// The live samples sit in an open-addressed table (65536 entries, mmap'd, under a lock); when it
// is full, new samples are dropped and counted.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

let sampleSlots = 1 << 16
let sampleFrames = 32
/// The words of one sample record in the table.
enum SampleRecord {
  static let addr = 0     // the sampled object (0: empty slot; sampleTombstone: removed)
  static let size = 1     // its size in bytes
  static let depth = 2    // frames recorded
  static let frames = 3   // the return addresses, innermost first
}
let sampleWords = SampleRecord.frames + sampleFrames
let sampleTombstone: UInt = 1

extension UnsafeMutablePointer where Pointee == MHeap {
  func startHeapProfile(rate: UInt64) -> Bool {
    let ins = pointee.instrumentation
    guard let m = sysMap(sampleSlots * sampleWords * 8) else { return false }
    ins.pointee.samples = m.assumingMemoryBound(to: UInt.self)
    ins.pointee.profileRate = rate
    return true
  }

  @inline(__always) func sampleSlot(_ p: UInt) -> Int {
    Int(truncatingIfNeeded: (UInt64(p >> 4) &* 0x9E37_79B9_7F4A_7C15) >> 48) & (sampleSlots - 1)
  }

  /// The table slot holding p (`insert`: or the first free slot on its probe path), or nil.
  /// Sample lock held.
  func sampleRecord(_ table: UnsafeMutablePointer<UInt>, _ p: UInt, insert: Bool) -> UnsafeMutablePointer<UInt>? {
    var i = sampleSlot(p)
    for _ in 0..<sampleSlots {
      let rec = table + i * sampleWords
      if rec[SampleRecord.addr] == p { return rec }
      if rec[SampleRecord.addr] == 0 { return insert ? rec : nil }
      if insert && rec[SampleRecord.addr] == sampleTombstone { return rec }
      i = (i + 1) & (sampleSlots - 1)
    }
    return nil
  }

  func addSample(_ p: UInt, size: Int, frames: UnsafeMutablePointer<UnsafeMutableRawPointer?>, count: Int) {
    let ins = pointee.instrumentation
    guard let table = ins.pointee.samples else { return }
    lockAcquire(&ins.pointee.lock)
    defer { lockRelease(&ins.pointee.lock) }
    guard let rec = sampleRecord(table, p, insert: true) else { ins.pointee.droppedSamples += 1; return }
    if rec[SampleRecord.addr] != p { ins.pointee.liveSamples += 1 }
    rec[SampleRecord.addr] = p
    rec[SampleRecord.size] = UInt(size)
    rec[SampleRecord.depth] = UInt(count)
    for k in 0..<count { rec[SampleRecord.frames + k] = UInt(bitPattern: frames[k]) }
  }

  func removeSample(_ p: UInt) {
    let ins = pointee.instrumentation
    guard let table = ins.pointee.samples else { return }
    lockAcquire(&ins.pointee.lock)
    defer { lockRelease(&ins.pointee.lock) }
    guard let rec = sampleRecord(table, p, insert: false) else { return }
    rec[SampleRecord.addr] = sampleTombstone
    ins.pointee.liveSamples -= 1
  }

  /// Writes the live sampled allocations (the raw format above).
  public func writeHeapProfile(to fd: Int32) {
    let ins = pointee.instrumentation
    guard let table = ins.pointee.samples else { return }
    writeStatic(fd, "# goalloc heapprofile v1\n# rate ")
    goalloc_write_u64(fd, ins.pointee.profileRate)
    writeStatic(fd, "\n")
    lockAcquire(&ins.pointee.lock)
    for i in 0..<sampleSlots {
      let rec = table + i * sampleWords
      if rec[SampleRecord.addr] == 0 || rec[SampleRecord.addr] == sampleTombstone { continue }
      goalloc_write_sample(fd, UInt64(rec[SampleRecord.size]), rec + SampleRecord.frames, Int32(rec[SampleRecord.depth]))
    }
    lockRelease(&ins.pointee.lock)
    goalloc_write_maps(fd)
  }
}
