// `goalloc stats [--json] [--all] -- CMD [ARGS...]`: runs CMD under libgoalloc.so with stats=1
// and prints the MemStats it reports at exit as a table (or JSON), labelled with the process's pid
// and command line. CMD's standard error goes through a pipe: the stats blocks (a heading line
// and `goalloc: <Name> <number>` lines) are taken out, everything else is passed on unchanged.

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
      the library prints when a process exits (GOALLOC_DEBUG=stats=1: a block headed by the \
      process's pid and command line) are collected and shown as a table on standard output \
      after it ends (--json: one JSON object). When the command starts other programs under the \
      library, each reports; the table shows the command's own process (or, if it did not \
      report, the last one to exit), --all shows every one, labelled. The exit status is the \
      command's.

      A program that makes no allocation of its own still reports (the library is set up when it \
      loads; the few allocations shown are libc's start-up). Nothing is reported by a process \
      that ends with _exit() (as dash does) or is killed by a signal (e.g. SIGABRT after a bad \
      free), or that does not load libgoalloc.so (a static or setuid program).
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
      throw ValidationError("missing command; usage: goalloc stats [--json] [--all] -- CMD [ARGS...]")
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
    let own = blocks.lastIndex { $0.pid == pid }
    guard let shownIndex = own ?? blocks.indices.last else {
      printError("goalloc stats: " + Self.noReport(command[0], end, sawBadFree: filter.sawAllocatorReport))
      throw ExitCode(end.exitCode != 0 ? end.exitCode : 1)
    }
    if json {
      print(Self.json(command: command, end: end, blocks: blocks, shown: blocks[shownIndex], all: all))
    } else {
      let name = command.joined(separator: " ")
      if all {
        for (i, b) in blocks.enumerated() {
          if i > 0 { print("") }
          let mark = b.pid == pid ? ", the command itself (\(end.description))" : ""
          print("GoAlloc statistics of \(b.label), process \(i + 1) of \(blocks.count) to exit\(mark)")
          print(Self.table(b.fields), terminator: "")
        }
      } else {
        let b = blocks[shownIndex]
        var heading = "GoAlloc statistics of \(b.label)"
        if own != nil {
          heading += ", \(end.description)"
          if blocks.count > 1 { heading += " (\(blocks.count - 1) other processes reported too: --all shows them)" }
        } else {
          heading += ", the last of \(blocks.count) processes to exit (\(name): \(end.description), no report of its own)"
        }
        print(heading)
        print(Self.table(b.fields), terminator: "")
      }
    }
    if own == nil, end.signal != nil {
      printError("goalloc stats: " + Self.noReport(command[0], end, sawBadFree: filter.sawAllocatorReport))
    }
    throw ExitCode(end.exitCode)
  }

  /// Why the command's own process printed no statistics, in one line.
  static func noReport(_ program: String, _ end: ChildProcess.Termination, sawBadFree: Bool) -> String {
    if let s = end.signal {
      var text = "\(program) was \(end.description) before it could report (a process reports when it exits)"
      if s == SIGABRT && sawBadFree {
        text += "; GoAlloc stopped it after the bad free reported above (GOALLOC_DEBUG=badfree=warn counts bad frees and goes on)"
      } else if s == SIGABRT {
        text += "; the program aborted (its own error output, above, says why)"
      }
      return text
    }
    return "\(program) reported no statistics (\(end.description)): it ended with _exit() (as dash does), "
      + "or did not load libgoalloc.so (a static or setuid program)"
  }

  // MARK: output

  /// What each field means; byte counts are also shown in KiB/MiB.
  static let fields: [String: (bytes: Bool, meaning: String)] = [
    "Alloc": (true, "bytes of allocated heap objects"),
    "TotalAlloc": (true, "cumulative bytes allocated"),
    "Sys": (true, "memory obtained from the OS: heap not released + metadata"),
    "SysReserved": (true, "address space mapped (Sys + untouched arenas and tables)"),
    "Mallocs": (false, "objects allocated (cumulative)"),
    "Frees": (false, "objects freed (cumulative)"),
    "HeapAlloc": (true, "bytes in live objects (slot sizes)"),
    "HeapSys": (true, "heap address space (HeapIdle + HeapInuse)"),
    "HeapIdle": (true, "bytes in pages in no span"),
    "HeapInuse": (true, "bytes in pages in spans"),
    "HeapReleased": (true, "idle bytes returned to the OS or never touched"),
    "HeapObjects": (false, "live objects (Mallocs - Frees)"),
    "MSpanInuse": (true, "span metadata in use"),
    "MSpanSys": (true, "span metadata obtained from the OS"),
    "MCacheInuse": (true, "thread-cache metadata in use"),
    "MCacheSys": (true, "thread-cache metadata obtained from the OS"),
    "OtherSys": (true, "other metadata (arena index in use, page allocator)"),
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

  /// {"command": [...], "exit_status": N, ["signal": N,] "processes": N, "pid": N, "process": "...",
  ///  "stats": {...}[, "all": [{"pid": N, "process": "...", "stats": {...}}, ...]]}
  static func json(command: [String], end: ChildProcess.Termination, blocks: [StatsBlock], shown: StatsBlock,
                   all: Bool) -> String {
    func object(_ b: [(String, UInt64)]) -> String {
      "{" + b.map { "\(jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
    func identity(_ b: StatsBlock) -> String {
      "\"pid\": " + (b.pid.map(String.init) ?? "null") + ", \"process\": " + (b.commandLine.map(jsonString) ?? "null")
    }
    var out = "{\"command\": [" + command.map(jsonString).joined(separator: ", ") + "]"
    out += ", \"exit_status\": \(end.exitCode)"
    if let s = end.signal { out += ", \"signal\": \(s)" }
    out += ", \"processes\": \(blocks.count)"
    out += ", " + identity(shown) + ", \"stats\": " + object(shown.fields)
    if all {
      out += ", \"all\": [" + blocks.map { "{" + identity($0) + ", \"stats\": " + object($0.fields) + "}" }
        .joined(separator: ", ") + "]"
    }
    return out + "}"
  }
}

/// The statistics one process printed: its pid and command line (from the block's heading line,
/// `goalloc: MemStats of pid <pid> (<command line>)[ at exit]`) and its fields in order.
struct StatsBlock {
  var pid: Int32?
  var commandLine: String?
  var fields: [(String, UInt64)] = []

  var label: String {
    guard let pid else { return "an unnamed process" }
    return "pid \(pid) (\(commandLine ?? "?"))"
  }

  static let headingPrefix = "MemStats of pid "

  /// The pid and command line of a heading's text after "goalloc: ", or nil.
  static func parseHeading(_ text: String) -> (Int32, String)? {
    guard text.hasPrefix(headingPrefix) else { return nil }
    var rest = text.dropFirst(headingPrefix.count)
    let digits = rest.prefix { $0 >= "0" && $0 <= "9" }
    guard let pid = Int32(digits) else { return nil }
    rest = rest.dropFirst(digits.count)
    guard rest.hasPrefix(" ("), let close = rest.lastIndex(of: ")") else { return nil }
    return (pid, String(rest[rest.index(rest.startIndex, offsetBy: 2)..<close]))
  }
}

/// Separates the statistics blocks (`goalloc: MemStats of pid ...` and `goalloc: <Name> <number>`
/// lines) from the rest of a child's standard error, which it writes to ours as it comes (a
/// partial line that cannot be a stats line is not held back).
struct StatsLineFilter {
  private(set) var blocks: [StatsBlock] = []
  /// Whether a bad-pointer report from the allocator went by (`goalloc: free(): ...`).
  private(set) var sawAllocatorReport = false
  private var current = StatsBlock()
  private var pending: [UInt8] = []
  private var passingLine = false  // the rest of the current line goes straight through
  private var passThrough = true   // false: other lines are dropped, not written to stderr
  static let prefix = Array("goalloc: ".utf8)
  static let heading = Array(StatsBlock.headingPrefix.utf8)

  mutating func feed(_ bytes: ArraySlice<UInt8>) {
    var i = bytes.startIndex
    // A process's stats block can arrive while a partial line of someone else's goes through
    // (each block is one write, but another process's line may be cut anywhere): a read that
    // starts like a stats line starts a new candidate line.
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

  /// All of a captured standard error at once, keeping the blocks and dropping the other lines.
  mutating func feedSilently(_ bytes: [UInt8]) {
    passThrough = false
    feed(bytes[...])
    finish()
  }

  mutating func finish() {
    if !pending.isEmpty { line(pending) }
    pending.removeAll()
    endBlock()
  }

  private mutating func endBlock() {
    if !current.fields.isEmpty { blocks.append(current) }
    current = StatsBlock()
  }

  /// A partial line that may still turn out to be a stats line (a heading, or a name and digits).
  static func couldBeStats(_ p: [UInt8]) -> Bool {
    let n = min(p.count, prefix.count)
    if Array(p[..<n]) != Array(prefix[..<n]) { return false }
    if p.count <= prefix.count { return true }
    let rest = Array(p[prefix.count...])
    let k = min(rest.count, heading.count)
    if Array(rest[..<k]) == Array(heading[..<k]) { return true }  // the heading: anything up to the newline
    // "goalloc: Name 123": letters, one space, digits.
    var i = prefix.count
    while i < p.count && Self.isLetter(p[i]) { i += 1 }
    if i == p.count { return true }
    guard p[i] == 0x20, i > prefix.count else { return false }
    i += 1
    while i < p.count && p[i] >= 0x30 && p[i] <= 0x39 { i += 1 }
    return i == p.count
  }

  /// "goalloc: <op>(): ...": the library's one-line report of a bad free, realloc or size query.
  static func isBadPointerReport(_ l: [UInt8]) -> Bool {
    guard l.starts(with: prefix) else { return false }
    var i = prefix.count
    while i < l.count && (isLetter(l[i]) || l[i] == 0x5F) { i += 1 }
    return i > prefix.count && l[i...].starts(with: Array("(): ".utf8))
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
    var text = l[...]
    if text.last == 0x0A { text = text.dropLast() }
    if text.starts(with: Self.prefix),
       let (pid, commandLine) = StatsBlock.parseHeading(String(decoding: text.dropFirst(Self.prefix.count), as: UTF8.self)) {
      endBlock()
      current.pid = pid
      current.commandLine = commandLine
      return
    }
    guard let (name, value) = Self.parse(l) else {
      if Self.isBadPointerReport(l) { sawAllocatorReport = true }
      forward(l[...])
      return
    }
    // A name seen again starts the next process's block (a block without a heading).
    if current.fields.contains(where: { $0.0 == name }) { endBlock() }
    current.fields.append((name, value))
  }

  private func forward(_ bytes: ArraySlice<UInt8>) {
    guard passThrough else { return }
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
