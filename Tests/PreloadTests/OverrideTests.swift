// GoAllocOverride: a Swift executable that depends on the product gets GoAlloc as its malloc with
// no LD_PRELOAD. Examples/HelloServer (a Hummingbird 2 server, its own package depending on this
// one by path) is built, started on loopback, sent requests, and must report GoAlloc's MemStats
// from its /allocator endpoint and print its stats block at exit (GOALLOC_DEBUG=stats=1).
// The example's first build takes minutes (Hummingbird and SwiftNIO), so the test runs when
// GOALLOC_EXAMPLES=1 (.ci/run sets it), and is skipped, saying why, when the example's
// packages cannot be resolved or built.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("GoAllocOverride: a Swift server that links GoAlloc as its allocator")
struct OverrideTests {
  static let examplePath = Paths.packageRoot.appendingPathComponent("Examples/HelloServer")
  static var enabled: Bool { ProcessInfo.processInfo.environment["GOALLOC_EXAMPLES"] == "1" }

  /// Builds the example once per test process: nil when it built, else why not.
  static let build: Task<String?, Never> = Task {
    guard let swift = Paths.which("swift") else { return "no `swift` on PATH" }
    guard let r = try? await Subprocess.run(swift, ["build", "--package-path", examplePath.path], timeout: 1500) else {
      return "could not start swift build"
    }
    if r.exitedCleanly { return nil }
    let text = r.stdout + r.stderr
    if text.contains("Could not resolve") || text.contains("could not resolve") || text.contains("does not appear to be a git repository")
      || text.contains("fatal: unable to access") || text.contains("no versions of") {
      return "the example's packages (Hummingbird) cannot be resolved here:\n\(text.suffix(600))"
    }
    Issue.record("building Examples/HelloServer failed\n\(r)")
    return "the example did not build"
  }

  /// A one-request HTTP/1.1 client over a loopback socket.
  static func get(_ port: Int, _ path: String) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else { return nil }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
    var response: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n <= 0 { break }
      response += buf[0..<n]
    }
    return String(decoding: response, as: UTF8.self)
  }

  @Test("HelloServer (Hummingbird) serves loopback requests with GoAlloc as malloc, no LD_PRELOAD",
        .enabled(if: OverrideTests.enabled, "set GOALLOC_EXAMPLES=1 to build and run Examples/HelloServer (minutes the first time)"),
        .enabled("Examples/HelloServer must resolve and build") { await OverrideTests.build.value == nil })
  func helloServer() async throws {
    let exe = Self.examplePath.appendingPathComponent(".build/debug/HelloServer")
    // The executable links the override library directly.
    let readelf = try await Subprocess.run(try Paths.requireTool("readelf"), ["-d", exe.path], timeout: 30)
    #expect(readelf.stdout.contains("[libGoAllocOverride.so]"), "NEEDED entries\n\(readelf)")

    let process = Process()
    process.executableURL = exe
    process.arguments = ["0"]
    var env = ProcessInfo.processInfo.environment
    env["LD_PRELOAD"] = nil
    env["GOALLOC_DEBUG"] = "stats=1"
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    // "listening on PORT", within a minute.
    var port = 0
    var seen = ""
    let deadline = Date().addingTimeInterval(60)
    while port == 0 && Date() < deadline && process.isRunning {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { try await Task.sleep(for: .milliseconds(50)); continue }
      seen += String(decoding: chunk, as: UTF8.self)
      if let line = seen.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
        port = Int(line.dropFirst("listening on ".count)) ?? 0
      }
    }
    try #require(port > 0, "the server did not say where it listens: \(seen)")

    let before = try #require(Self.get(port, "/allocator"), "no answer from /allocator")
    for _ in 0..<50 {
      let r = Self.get(port, "/")
      #expect(r?.contains("200 OK") == true && r?.contains("Hello from GoAlloc") == true, "\(r ?? "no answer")")
    }
    let after = try #require(Self.get(port, "/allocator"), "no answer from /allocator")
    func mallocs(_ s: String) -> Int? {
      s.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("mallocs=") }.flatMap { Int($0.dropFirst(8)) }
    }
    #expect(before.contains("goalloc malloc=") && before.contains("libGoAllocOverride.so"), "\(before)")
    let m0 = try #require(mallocs(before)), m1 = try #require(mallocs(after))
    #expect(m0 > 0 && m1 > m0 + 50, "GoAlloc's Mallocs grow with the requests: \(m0) -> \(m1)")

    kill(process.processIdentifier, SIGINT)
    let stop = Date().addingTimeInterval(30)
    while process.isRunning && Date() < stop { try await Task.sleep(for: .milliseconds(50)) }
    #expect(!process.isRunning, "the server stops on SIGINT")
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let blocks = Stats.blocks(stderr)
    #expect(blocks.contains { ($0["Mallocs"] ?? 0) > UInt64(m1) }, "a stats block at exit with Mallocs > \(m1)\n\(stderr.suffix(2000))")
  }
}
