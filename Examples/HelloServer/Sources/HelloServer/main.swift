// HelloServer: Hummingbird on 127.0.0.1 (port: the first argument, 0 for any free one; the bound
// port is printed as "listening on PORT"). GET / says hello and builds a little JSON-ish text on
// the way; GET /allocator says which allocator serves this process's malloc and GoAlloc's
// MemStats counters, read through goalloc_read_memstats.
import Foundation
import Hummingbird

#if canImport(Glibc)
import Glibc
#endif

/// "goalloc malloc=<library> mallocs=N frees=N heap_alloc=N" when a GoAlloc library provides this
/// process's malloc (the loader's choice, dlsym(RTLD_DEFAULT, "malloc"), is that library's own).
func allocatorReport() -> String {
  let rtldDefault = UnsafeMutableRawPointer(bitPattern: 0)
  guard let read = dlsym(rtldDefault, "goalloc_read_memstats") else {
    return "not goalloc: no goalloc_read_memstats in the process"
  }
  // The GoAlloc library among the mappings, and its own malloc.
  let maps = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd())
    .flatMap { $0.map { String(decoding: $0, as: UTF8.self) } } ?? ""  // /proc files report size 0
  let library = maps.split(separator: "\n").compactMap { line -> String? in
    guard let slash = line.firstIndex(of: "/") else { return nil }
    let path = String(line[slash...])
    return path.hasSuffix("/libGoAllocOverride.so") || path.hasSuffix("/libgoalloc.so") ? path : nil
  }.first ?? "?"
  let handle = dlopen(library, RTLD_NOW | RTLD_NOLOAD)
  let ours = handle.flatMap { dlsym($0, "malloc") }
  let name = ours != nil && ours == dlsym(rtldDefault, "malloc") ? "goalloc" : "other"
  var stats = [UInt64](repeating: 0, count: 64)
  typealias ReadStats = @convention(c) (UnsafeMutablePointer<UInt64>) -> Void
  unsafeBitCast(read, to: ReadStats.self)(&stats)
  // struct goalloc_memstats (include/goalloc.h): alloc, total_alloc, sys, mallocs, frees, heap_alloc, ...
  return "\(name) malloc=\(library) mallocs=\(stats[3]) frees=\(stats[4]) heap_alloc=\(stats[5])"
}

let port = Int(CommandLine.arguments.dropFirst().first ?? "8080") ?? 8080
let router = Router()
router.get("/") { _, _ -> String in
  let words = (0..<100).map { "word\($0)" }
  return "Hello from GoAlloc: " + words.joined(separator: ",").prefix(40) + "\n"
}
router.get("/allocator") { _, _ -> String in allocatorReport() + "\n" }
let app = Application(
  router: router,
  configuration: .init(address: .hostname("127.0.0.1", port: port)),
  onServerRunning: { channel in
    print("listening on \(channel.localAddress?.port ?? -1)")
    fflush(nil)
  })
try await app.runService()
