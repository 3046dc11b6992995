// `goalloc stats [--json] [--all] -- CMD [ARGS...]`: runs CMD under libgoalloc.so with stats=1
// and prints the MemStats it reports at exit as a table (or JSON). CMD's standard error goes
// through a pipe: the `goalloc: <Name> <number>` lines are taken out, everything else is passed
// on unchanged.

import ArgumentParser
import GoAllocTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct StatsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stats",
    abstract: "Run a command under libgoalloc.so and print its allocator statistics at exit.",
    discussion: """
      The command's output and its own standard error pass through unchanged; the statistics \
      the library prints when the program exits (GOALLOC_DEBUG=stats=1) are collected and shown \
      as a table on standard output after it ends (--json: one JSON object). When the command \
      starts other programs under the library, each reports; the table shows the last one to \
      exit (normally the command itself), --all shows every one. The exit status is the \
      command's. A program that never allocates, or closes standard error before it exits, \
      reports nothing.
      """
  )

  @Flag(help: "Print JSON instead of a table.")
  var json = false

  @Flag(help: "Show the statistics of every process that reported, in the order they exited.")
  var all = false

  @Argument(parsing: .postTerminator, help: "The command to run and its arguments (after `--`).")
  var command: [String] = []

  func run() throws {
    guard !command.isEmpty else {
      printError("goalloc stats: missing command; usage: goalloc stats [--json] [--all] -- CMD [ARGS...]")
      throw ExitCode(2)
    }
    let library = try Preload.libraryPath()
    let env = ChildProcess.preloadEnvironment(library: library, debug: [("stats", "1")])
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else {
      printError("goalloc stats: cannot create a pipe: \(String(cString: strerror(errno)))")
      throw ExitCode.failure
    }
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    let pid: pid_t
    do {
      pid = try ChildProcess.spawn(command, env: env, stderrFD: fds[1], closeInChild: [fds[0], fds[1]],
                                   command: "goalloc stats")
    } catch {
      close(fds[0]); close(fds[1])
      throw error
    }
    close(fds[1])
    var filter = StatsLineFilter()
    // Read until every writer (the command and anything it started) has closed the pipe.
    let oldInt = signal(SIGINT, SIG_IGN), oldQuit = signal(SIGQUIT, SIG_IGN)
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = read(fds[0], &chunk, chunk.count)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      filter.feed(chunk[..<n])
    }
    filter.finish()
    close(fds[0])
    signal(SIGINT, oldInt); signal(SIGQUIT, oldQuit)
    let end = ChildProcess.wait(pid)

    let blocks = filter.blocks
    guard let last = blocks.last else {
      printError("goalloc stats: \(command[0]) reported no statistics (\(end.description)): it made no allocation, "
                 + "closed standard error before exiting, or did not load libgoalloc.so (static or setuid program)")
      throw ExitCode(end.exitCode != 0 ? end.exitCode : 1)
    }
    if json {
      print(Self.json(command: command, end: end, blocks: blocks, all: all))
    } else {
      let shown = all ? blocks : [last]
      for (i, b) in shown.enumerated() {
        if i > 0 { print("") }
        var heading = "GoAlloc statistics of \(command.joined(separator: " ")) (\(end.description))"
        if blocks.count > 1 {
          heading = all ? "GoAlloc statistics, process \(i + 1) of \(blocks.count) to exit"
            : heading + ", the last of \(blocks.count) processes to exit"
        }
        print(heading)
        print(Self.table(b), terminator: "")
      }
    }
    throw ExitCode(end.exitCode)
  }

  // MARK: output

  /// What each field means; byte counts are also shown in KiB/MiB.
  static let fields: [String: (bytes: Bool, meaning: String)] = [
    "Alloc": (true, "bytes of allocated heap objects"),
    "TotalAlloc": (true, "cumulative bytes allocated"),
    "Sys": (true, "bytes obtained from the OS (heap + metadata)"),
    "Mallocs": (false, "objects allocated (cumulative)"),
    "Frees": (false, "objects freed (cumulative)"),
    "HeapAlloc": (true, "bytes in live objects (slot sizes)"),
    "HeapSys": (true, "heap address space (HeapIdle + HeapInuse)"),
    "HeapIdle": (true, "bytes in pages in no span"),
    "HeapInuse": (true, "bytes in pages in spans"),
    "HeapReleased": (true, "idle bytes returned to the OS"),
    "HeapObjects": (false, "live objects (Mallocs - Frees)"),
    "MSpanInuse": (true, "span metadata in use"),
    "MSpanSys": (true, "span metadata obtained from the OS"),
    "MCacheInuse": (true, "thread-cache metadata in use"),
    "MCacheSys": (true, "thread-cache metadata obtained from the OS"),
    "OtherSys": (true, "other metadata (arena index, page allocator)"),
    "LargeAllocs": (false, "large objects (> 32 KiB) allocated"),
    "LargeFrees": (false, "large objects freed"),
    "TinyAllocs": (false, "tiny-allocator objects (Swift API, noscan < 16 B)"),
    "BadFrees": (false, "invalid frees reported (badfree=warn)"),
    "ThreadCaches": (false, "thread caches alive at exit"),
    "SpansInUse": (false, "spans in use"),
    "RoundingWaste": (true, "bytes lost to rounding requests up to slot sizes"),
    "NextGC": (true, "next GC target (GC mode only)"),
    "NumGC": (false, "GC cycles (GC mode only)"),
    "PauseTotalNs": (false, "total GC pause, ns (GC mode only)"),
  ]

  static func table(_ block: [(String, UInt64)]) -> String {
    let nameWidth = max(12, block.map(\.0.count).max() ?? 0)
    let valueWidth = max(8, block.map { String($0.1).count }.max() ?? 0)
    var out = ""
    out += "  " + "Name".pad(nameWidth) + "  " + "Value".padLeft(valueWidth) + "  " + "".pad(10) + "  Meaning\n"
    for (name, value) in block {
      let info = fields[name]
      let human = info?.bytes == true && value >= 1024 ? GoAllocFormat.bytes(Int(clamping: value)) : ""
      out += "  " + name.pad(nameWidth) + "  " + String(value).padLeft(valueWidth) + "  " + human.pad(10)
      out += "  " + (info?.meaning ?? "") + "\n"
    }
    return out.replacingTrailingSpaces()
  }

  static func json(command: [String], end: ChildProcess.Termination, blocks: [[(String, UInt64)]], all: Bool) -> String {
    func object(_ b: [(String, UInt64)]) -> String {
      "{" + b.map { "\(jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
    var out = "{\"command\": [" + command.map(jsonString).joined(separator: ", ") + "]"
    out += ", \"exit_status\": \(end.exitCode)"
    if let s = end.signal { out += ", \"signal\": \(s)" }
    out += ", \"processes\": \(blocks.count)"
    out += ", \"stats\": " + object(blocks.last ?? [])
    if all { out += ", \"all\": [" + blocks.map(object).joined(separator: ", ") + "]" }
    return out + "}"
  }
}

/// Separates `goalloc: <Name> <number>` lines from the rest of a child's standard error, which
/// it writes to ours as it comes (a partial line that cannot be a stats line is not held back).
struct StatsLineFilter {
  private(set) var blocks: [[(String, UInt64)]] = []
  private var current: [(String, UInt64)] = []
  private var pending: [UInt8] = []
  private var passingLine = false  // the rest of the current line goes straight through
  static let prefix = Array("goalloc: ".utf8)

  mutating func feed(_ bytes: ArraySlice<UInt8>) {
    var i = bytes.startIndex
    // Another process's stats line can arrive while a partial line of someone else's goes
    // through (the library writes "goalloc: " with a write of its own): a read that starts like
    // a stats line starts a new candidate line.
    if passingLine {
      let head = bytes.prefix { $0 != 0x0A }
      if head.count >= 2 && Self.couldBeStats(Array(head)) { passingLine = false }
    }
    while i < bytes.endIndex {
      let nl = bytes[i...].firstIndex(of: 0x0A)
      let end = nl.map { $0 + 1 } ?? bytes.endIndex
      let piece = bytes[i..<end]
      if passingLine {
        forward(piece)
        if nl != nil { passingLine = false }
      } else {
        pending.append(contentsOf: piece)
        if nl != nil {
          line(pending)
          pending.removeAll(keepingCapacity: true)
        } else if !Self.couldBeStats(pending) {
          forward(pending[...])
          pending.removeAll(keepingCapacity: true)
          passingLine = true
        }
      }
      i = end
    }
  }

  mutating func finish() {
    if !pending.isEmpty { line(pending) }
    pending.removeAll()
    if !current.isEmpty { blocks.append(current) }
    current = []
  }

  /// A partial line that may still turn out to be a stats line.
  static func couldBeStats(_ p: [UInt8]) -> Bool {
    let n = min(p.count, prefix.count)
    if Array(p[..<n]) != Array(prefix[..<n]) { return false }
    if p.count <= prefix.count { return true }
    // "goalloc: Name 123": letters, one space, digits.
    var i = prefix.count
    while i < p.count && Self.isLetter(p[i]) { i += 1 }
    if i == p.count { return true }
    guard p[i] == 0x20, i > prefix.count else { return false }
    i += 1
    while i < p.count && p[i] >= 0x30 && p[i] <= 0x39 { i += 1 }
    return i == p.count
  }

  static func isLetter(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }

  /// A stats line's name and value, or nil.
  static func parse(_ line: [UInt8]) -> (String, UInt64)? {
    var l = line[...]
    if l.last == 0x0A { l = l.dropLast() }
    guard l.starts(with: prefix) else { return nil }
    let rest = l.dropFirst(prefix.count)
    guard let sp = rest.firstIndex(of: 0x20) else { return nil }
    let name = rest[..<sp], digits = rest[(sp + 1)...]
    guard !name.isEmpty, name.allSatisfy(isLetter), !digits.isEmpty, digits.count <= 20,
          digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
          let v = UInt64(String(decoding: digits, as: UTF8.self)) else { return nil }
    return (String(decoding: name, as: UTF8.self), v)
  }

  private mutating func line(_ l: [UInt8]) {
    guard let (name, value) = Self.parse(l) else {
      forward(l[...])
      return
    }
    // A name seen again starts the next process's block.
    if current.contains(where: { $0.0 == name }) {
      blocks.append(current)
      current = []
    }
    current.append((name, value))
  }

  private func forward(_ bytes: ArraySlice<UInt8>) {
    bytes.withUnsafeBytes { b in
      var off = 0
      while off < b.count {
        let n = write(2, b.baseAddress! + off, b.count - off)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        off += n
      }
    }
  }
}

func jsonString(_ s: String) -> String {
  var out = "\""
  for u in s.unicodeScalars {
    switch u {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    default:
      if u.value < 0x20 {
        let h = String(u.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
      } else {
        out.unicodeScalars.append(u)
      }
    }
  }
  return out + "\""
}

extension String {
  /// Padded with spaces on the right to `width` characters.
  func pad(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
  /// Padded with spaces on the left to `width` characters.
  func padLeft(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
  /// Each line without its trailing spaces.
  func replacingTrailingSpaces() -> String {
    split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
      var l = line
      while l.last == " " { l = l.dropLast() }
      return l
    }.joined(separator: "\n")
  }
}
