// HeapProfile: a sampled heap profile, as Go's MemProfileRate (GOALLOC_DEBUG=memprofile=FILE,
// memprofilerate=BYTES, default 512 KiB).
//
// Each thread counts down the bytes it allocates (slot sizes); when the count goes negative the
// allocation is sampled — its call stack recorded — and the next distance is drawn from an
// exponential distribution with mean `rate`, so samples form a Poisson process over allocated
// bytes. Sampled objects that are still live when the profile is written (at exit, or on demand)
// are reported in the folded-stack format flame-graph tools read:
//   root_frame;...;leaf_frame <estimated bytes>
// where the estimate unsamples the object's size as Go does: size / (1 - exp(-size/rate)).
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

  /// Writes the live sampled allocations as folded stacks (root first).
  public func writeHeapProfile(to fd: Int32) {
    let ins = pointee.instrumentation
    guard let table = ins.pointee.samples else { return }
    lockAcquire(&ins.pointee.lock)
    defer { lockRelease(&ins.pointee.lock) }
    for i in 0..<sampleSlots {
      let rec = table + i * sampleWords
      if rec[SampleRecord.addr] == 0 || rec[SampleRecord.addr] == sampleTombstone { continue }
      let n = Int(rec[SampleRecord.depth])
      if n == 0 { writeStatic(fd, "[unknown]") }
      var k = n - 1
      while k >= 0 {
        goalloc_write_frame(fd, UnsafeMutableRawPointer(bitPattern: rec[SampleRecord.frames + k]))
        if k > 0 { writeStatic(fd, ";") }
        k -= 1
      }
      writeStatic(fd, " ")
      goalloc_write_u64(fd, goalloc_scale_sample(UInt64(rec[SampleRecord.size]), ins.pointee.profileRate))
      writeStatic(fd, "\n")
    }
  }
}
