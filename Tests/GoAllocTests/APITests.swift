import Testing
import GoAlloc
import GoAllocCore

@Suite(.serialized) struct APITests {
  @Test func allocateUseAndFree() { _withExclusiveGlobalHeapForTesting {
    for size in [1, 8, 15, 16, 18, 24, 100, 1024, 4000, 32768, 40_000, 1 << 20] {
      let p = GoAlloc.allocate(size, scan: true)!
      #expect(GoAlloc.usableSize(p) >= size)
      p.initializeMemory(as: UInt8.self, repeating: 0x7F, count: size)
      GoAlloc.deallocate(p)
    }
  } }

  @Test func goSizeClassesAsTheyAre() { _withExclusiveGlobalHeapForTesting {
    #expect(GoAlloc.sizeClass(for: 18) == 3)
    #expect(GoAlloc.sizeClass(for: 18, mallocMode: true) == 4)
    let p = GoAlloc.allocate(18, scan: true)!
    #expect(GoAlloc.usableSize(p) == 24)
    #expect(UInt(bitPattern: p) % 8 == 0)
    GoAlloc.deallocate(p)
  } }

  @Test func zeroedAndAligned() { _withExclusiveGlobalHeapForTesting {
    let z = GoAlloc.allocateZeroed(5000)!
    #expect(UnsafeRawBufferPointer(start: z, count: 5000).allSatisfy { $0 == 0 })
    GoAlloc.deallocate(z)
    for shift in 3...20 {
      let a = 1 << shift
      let p = GoAlloc.allocate(100, alignment: a)!
      #expect(UInt(bitPattern: p) % UInt(a) == 0)
      GoAlloc.deallocate(p)
    }
  } }

  @Test func memStatsAddUp() { _withExclusiveGlobalHeapForTesting {
    let before = MemStats.read()
    var ps: [UnsafeMutableRawPointer] = []
    for i in 0..<1000 { ps.append(GoAlloc.allocate(16 + i % 500, scan: true)!) }
    let mid = MemStats.read()
    #expect(mid.mallocs - before.mallocs == 1000)
    #expect(mid.heapObjects - before.heapObjects == 1000)
    #expect(mid.heapIdle + mid.heapInuse == mid.heapSys)
    #expect(mid.mallocs - mid.frees == mid.heapObjects)
    #expect(mid.heapAlloc <= mid.heapInuse)
    for p in ps { GoAlloc.deallocate(p) }
    let after = MemStats.read()
    #expect(after.heapObjects == before.heapObjects)
    #expect(after.frees - before.frees == 1000)
  } }

  @Test func bySizeAndFragmentation() { _withExclusiveGlobalHeapForTesting {
    let before = MemStats.bySize()
    var ps: [UnsafeMutableRawPointer] = []
    for _ in 0..<100 { ps.append(GoAlloc.allocate(1000, scan: true)!) }  // class 32 (1024 B)
    let after = MemStats.bySize()
    let c = GoAlloc.sizeClass(for: 1000)
    #expect(after[c - 1].size == 1024)
    #expect(after[c - 1].mallocs - before[c - 1].mallocs == 100)
    let frag = FragmentationReport.read()
    #expect(frag.bySizeClass[c].allocatedSlots >= 100)
    let perSpan = SizeClassInfo.objectsPerSpan(ofClass: c)
    #expect(perSpan >= 12 && SizeClassInfo.pagesPerSpan(ofClass: c) * 8192 / 1024 == perSpan)
    #expect(frag.bySizeClass[c].spans >= (100 + perSpan - 1) / perSpan)
    // The estimate is positive and never more than the live bytes.
    #expect(frag.roundingWaste > 0)
    #expect(frag.roundingWaste <= MemStats.read().heapAlloc)
    for p in ps { GoAlloc.deallocate(p) }
  } }
}
