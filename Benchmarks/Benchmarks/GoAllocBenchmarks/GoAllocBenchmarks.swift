// GoAlloc's Swift API (`import GoAlloc`) against the system allocator, pattern by pattern:
// allocate/free per size class, zeroed, aligned, large, and cross-thread (allocated on one thread,
// freed on another). Each GoAlloc benchmark has a twin named the same with "malloc" in place of
// "GoAlloc", so the two sit side by side in the report.
//
// Run: `cd Benchmarks && swift package benchmark --no-progress`. The MallocInterposer trait counts
// calls to the C allocator: the GoAlloc rows must show 0 mallocs (the Swift API never calls it).
// Values are per scaled iteration (scalingFactor .kilo: one iteration = one allocate + free).

import Benchmark
import GoAlloc

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A handful of size classes: tiny-adjacent, small, a page, the largest small class (32 KiB).
let classSizes = [16, 64, 256, 1024, 8192, 32768]

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput, .mallocCountTotal],
    warmupIterations: 1,
    scalingFactor: .kilo,
    maxDuration: .seconds(1),
    maxIterations: 40
  )

  // Allocate, write one byte, free: the single-thread pair per size class.
  for size in classSizes {
    let label = "pair \(pad(size)) B"
    Benchmark("\(label) GoAlloc") { b in
      for _ in b.scaledIterations {
        let p = GoAlloc.allocate(size)!
        p.storeBytes(of: 1, as: UInt8.self)
        blackHole(p)
        GoAlloc.deallocate(p)
      }
    }
    Benchmark("\(label) malloc") { b in
      for _ in b.scaledIterations {
        let p = malloc(size)!
        p.storeBytes(of: 1, as: UInt8.self)
        blackHole(p)
        free(p)
      }
    }
  }

  // Zeroed memory: GoAlloc.allocateZeroed against calloc.
  for size in [256, 4096] {
    let label = "zeroed \(pad(size)) B"
    Benchmark("\(label) GoAlloc") { b in
      for _ in b.scaledIterations {
        let p = GoAlloc.allocateZeroed(size)!
        precondition(p.load(fromByteOffset: size - 1, as: UInt8.self) == 0)
        p.storeBytes(of: 1, toByteOffset: size - 1, as: UInt8.self)
        blackHole(p)
        GoAlloc.deallocate(p)
      }
    }
    Benchmark("\(label) malloc") { b in
      for _ in b.scaledIterations {
        let p = calloc(1, size)!
        precondition(p.load(fromByteOffset: size - 1, as: UInt8.self) == 0)
        p.storeBytes(of: 1, toByteOffset: size - 1, as: UInt8.self)
        blackHole(p)
        free(p)
      }
    }
  }

  // Aligned: GoAlloc.allocate(_:alignment:) against posix_memalign.
  for (size, alignment) in [(256, 64), (4096, 4096)] {
    let label = "aligned \(pad(size)) B @\(alignment)"
    Benchmark("\(label) GoAlloc") { b in
      for _ in b.scaledIterations {
        let p = GoAlloc.allocate(size, alignment: alignment)!
        precondition(Int(bitPattern: p) & (alignment - 1) == 0)
        blackHole(p)
        GoAlloc.deallocate(p)
      }
    }
    Benchmark("\(label) malloc") { b in
      for _ in b.scaledIterations {
        var p: UnsafeMutableRawPointer? = nil
        precondition(posix_memalign(&p, alignment, size) == 0)
        blackHole(p)
        free(p)
      }
    }
  }

  // Large objects (own spans in GoAlloc): allocate, touch the first and last byte, free.
  for size in [100 << 10, 1 << 20] {
    let label = "large \(size >> 10) KiB"
    Benchmark("\(label) GoAlloc") { b in
      for _ in b.scaledIterations {
        let p = GoAlloc.allocate(size)!
        p.storeBytes(of: 1, as: UInt8.self)
        p.storeBytes(of: 1, toByteOffset: size - 1, as: UInt8.self)
        blackHole(p)
        GoAlloc.deallocate(p)
      }
    }
    Benchmark("\(label) malloc") { b in
      for _ in b.scaledIterations {
        let p = malloc(size)!
        p.storeBytes(of: 1, as: UInt8.self)
        p.storeBytes(of: 1, toByteOffset: size - 1, as: UInt8.self)
        blackHole(p)
        free(p)
      }
    }
  }

  // Cross-thread: this thread allocates batches, a second thread frees them (while this one
  // fills the next batch). Per iteration: one allocate here, one free there.
  for size in [64, 1024] {
    let label = "cross-thread \(pad(size)) B"
    for allocator in [RemoteFreer.Allocator.goalloc, .system] {
      let name = allocator == .goalloc ? "GoAlloc" : "malloc"
      Benchmark("\(label) \(name)") { b in
        let freer = RemoteFreer.shared
        var left = b.scaledIterations.count
        while left > 0 {
          let k = min(left, RemoteFreer.batch)
          freer.fillAndHandOver(count: k, size: size, allocator: allocator)
          left -= k
        }
        freer.drain()
      }
    }
  }
}

/// Zero-pads sizes so the report sorts them numerically.
func pad(_ n: Int) -> String {
  let s = String(n)
  return String(repeating: "0", count: max(0, 5 - s.count)) + s
}

/// A long-lived second thread that frees the batches handed to it. Two buffers alternate: the
/// benchmark thread fills one while the freer empties the other.
///
/// Semaphores: `done` counts buffers the freer has finished with (1 when idle), `ready` counts
/// buffers handed to it. Invariant between benchmark runs: done == 1, ready == 0.
final class RemoteFreer: @unchecked Sendable {
  enum Allocator: Equatable { case goalloc, system }
  static let batch = 1000
  static let shared = RemoteFreer()

  private let buffers: UnsafeMutablePointer<UnsafeMutableRawPointer?>  // 2 * batch slots
  private let ready: UnsafeMutablePointer<sem_t>
  private let done: UnsafeMutablePointer<sem_t>
  private var filling = 0          // the buffer this thread fills next (0 or 1)
  private var handedBuffer = 0     // written before `ready` is posted, read after it is taken
  private var handedCount = 0
  private var handedAllocator = Allocator.goalloc

  private init() {
    buffers = .allocate(capacity: 2 * Self.batch)
    ready = .allocate(capacity: 1)
    done = .allocate(capacity: 1)
    sem_init(ready, 0, 0)
    sem_init(done, 0, 1)
    var thread = pthread_t()
    let context = Unmanaged.passRetained(self).toOpaque()
    let rc = pthread_create(&thread, nil, { context in
      Unmanaged<RemoteFreer>.fromOpaque(context!).takeUnretainedValue().serve()
    }, context)
    precondition(rc == 0, "pthread_create failed")
    pthread_detach(thread)
  }

  /// Allocates `count` blocks into the free buffer, then hands it to the freer thread.
  func fillAndHandOver(count: Int, size: Int, allocator: Allocator) {
    let base = buffers + filling * Self.batch
    for i in 0..<count {
      let p = allocator == .goalloc ? GoAlloc.allocate(size)! : malloc(size)!
      p.storeBytes(of: UInt8(truncatingIfNeeded: i), as: UInt8.self)
      base[i] = p
    }
    sem_wait(done)                 // the freer finished the other buffer
    handedBuffer = filling
    handedCount = count
    handedAllocator = allocator
    sem_post(ready)
    filling ^= 1
  }

  /// Waits until the freer has freed everything handed to it.
  func drain() {
    sem_wait(done)
    sem_post(done)
  }

  private func serve() -> UnsafeMutableRawPointer? {
    while true {
      sem_wait(ready)
      let base = buffers + handedBuffer * Self.batch
      for i in 0..<handedCount {
        let p = base[i]!
        precondition(p.load(as: UInt8.self) == UInt8(truncatingIfNeeded: i), "cross-thread block corrupted")
        if handedAllocator == .goalloc { GoAlloc.deallocate(p) } else { free(p) }
      }
      sem_post(done)
    }
  }
}
