// Running commands as children, and the files and paths around them: the helpers every
// subcommand shares (run --heapmap, stats, trace record/replay, bench). Spawning with an edited
// environment, waiting with SIGINT/SIGQUIT ignored (as system(3) does: ^C stops the child, and
// goalloc still reports) or not (bench: ^C stops the whole suite), exit statuses as shells give
// them, GOALLOC_DEBUG editing, PATH lookup (`Which`), and files and paths without Foundation
// (`Files`).

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum ChildProcess {
  /// How a child ended.
  struct Termination {
    var waitStatus: Int32
    var signal: Int32? { waitStatus & 0x7f == 0 ? nil : waitStatus & 0x7f }
    /// The exit code a shell would report: the child's, or 128 + signal.
    var exitCode: Int32 { waitStatus & 0x7f == 0 ? (waitStatus >> 8) & 0xff : 128 + (waitStatus & 0x7f) }
    var description: String {
      if let s = signal { return "killed by signal \(s) (\(String(cString: strsignal(s))))" }
      return "exit status \(exitCode)"
    }
  }

  /// This process's environment as NAME=value strings.
  static func currentEnvironment() -> [String] {
    var result: [String] = []
    var p = environ
    while let entry = p.pointee {
      result.append(String(cString: entry))
      p += 1
    }
    return result
  }

  /// The current environment with `set` applied (a nil value removes the variable).
  static func environment(_ set: [(String, String?)]) -> [String] {
    let names = Set(set.map(\.0))
    var env = currentEnvironment().filter { !names.contains(String($0.prefix { $0 != "=" })) }
    for (k, v) in set { if let v { env.append(k + "=" + v) } }
    return env
  }

  /// GOALLOC_DEBUG with `settings` (key, value) appended and any earlier setting of those keys
  /// removed (so the value is the one given here, and the library warns about no duplicate).
  static func debugValue(_ existing: String?, setting settings: [(String, String)]) -> String {
    let keys = Set(settings.map(\.0))
    var parts = (existing ?? "").split(separator: ",").map(String.init)
      .filter { !$0.isEmpty && !keys.contains(String($0.prefix { $0 != "=" })) }
    parts += settings.map { $0.0 + "=" + $0.1 }
    return parts.joined(separator: ",")
  }

  /// The environment for running a command under libgoalloc.so with extra GOALLOC_DEBUG settings.
  static func preloadEnvironment(library: String, debug settings: [(String, String)]) -> [String] {
    let preload = RunCommand.prepending(library, to: RunCommand.environment("LD_PRELOAD"), separator: ":")
    var set: [(String, String?)] = [("LD_PRELOAD", preload)]
    if !settings.isEmpty {
      set.append(("GOALLOC_DEBUG", debugValue(RunCommand.environment("GOALLOC_DEBUG"), setting: settings)))
    }
    return environment(set)
  }

  /// Starts `argv` (looked up in PATH) with `env`. `stdoutFD`/`stderrFD`, when given, become the
  /// child's fd 1/2 (`closeInChild` are closed in it). When it cannot start, prints one line
  /// (unless `command` is nil) and throws the shell's status (127 not found, 126 not executable).
  static func spawn(_ argv: [String], env: [String], stdinFD: Int32? = nil, stdoutFD: Int32? = nil,
                    stderrFD: Int32? = nil, closeInChild: [Int32] = [], command: String?) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let fd = stdinFD { posix_spawn_file_actions_adddup2(&actions, fd, 0) }
    if let fd = stdoutFD { posix_spawn_file_actions_adddup2(&actions, fd, 1) }
    if let fd = stderrFD { posix_spawn_file_actions_adddup2(&actions, fd, 2) }
    for fd in closeInChild { posix_spawn_file_actions_addclose(&actions, fd) }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGINT)
    sigaddset(&defaults, SIGQUIT)
    sigaddset(&defaults, SIGPIPE)
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF))

    var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
    var pid = pid_t()
    let rc = posix_spawnp(&pid, argv[0], &actions, &attr, &cArgs, &cEnv)
    if rc != 0 {
      if let command { printError("\(command): cannot execute \(argv[0]): \(String(cString: strerror(rc)))") }
      throw ExitCode(rc == ENOENT ? 127 : 126)
    }
    return pid
  }

  /// Waits for `pid`, by default with SIGINT and SIGQUIT ignored here (the child gets them from
  /// the terminal); with `ignoringInterrupts: false` they stop this process too.
  static func wait(_ pid: pid_t, ignoringInterrupts: Bool = true) -> Termination {
    if ignoringInterrupts {
      let oldInt = signal(SIGINT, SIG_IGN)
      let oldQuit = signal(SIGQUIT, SIG_IGN)
      defer { signal(SIGINT, oldInt); signal(SIGQUIT, oldQuit) }
      return waitForExit(pid)
    }
    return waitForExit(pid)
  }

  private static func waitForExit(_ pid: pid_t) -> Termination {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      if errno != EINTR { return Termination(waitStatus: 127 << 8) }
    }
    return Termination(waitStatus: status)
  }

  /// Runs `argv` to the end with standard input from /dev/null and standard output and error sent
  /// to files (created or truncated; nil: this process's own; the same file for both is fine).
  /// When a file cannot be written or `argv` cannot start, prints one line (unless `command` is
  /// nil) and throws. `ignoringInterrupts`: as for `wait`.
  static func runToFiles(_ argv: [String], env: [String], stdout: String?, stderr: String?,
                         command: String? = "goalloc", ignoringInterrupts: Bool = true) throws -> Termination {
    func create(_ path: String?) throws -> Int32? {
      guard let path else { return nil }
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
      guard fd >= 0 else {
        if let command { printError("\(command): cannot write \(path): \(String(cString: strerror(errno)))") }
        throw ExitCode.failure
      }
      return fd
    }
    let o = try create(stdout)
    defer { if let o { close(o) } }
    let e = try (stderr != nil && stderr == stdout ? o : create(stderr))
    defer { if let e, e != o { close(e) } }
    let i = open("/dev/null", O_RDONLY | O_CLOEXEC)
    defer { if i >= 0 { close(i) } }
    let pid = try spawn(argv, env: env, stdinFD: i >= 0 ? i : nil, stdoutFD: o, stderrFD: e, command: command)
    return wait(pid, ignoringInterrupts: ignoringInterrupts)
  }

  /// Runs `argv` to the end with its output captured (stderr to /dev/null); nil if it could not
  /// start or failed.
  static func capture(_ argv: [String], env: [String]? = nil) -> String? {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return nil }
    let devnull = open("/dev/null", O_RDWR)
    defer { if devnull >= 0 { close(devnull) } }
    guard let pid = try? spawn(argv, env: env ?? currentEnvironment(), stdinFD: devnull,
                               stdoutFD: fds[1], stderrFD: devnull, closeInChild: [fds[0]], command: nil) else {
      close(fds[0]); close(fds[1])
      return nil
    }
    close(fds[1])
    let text = readAll(fds[0])
    close(fds[0])
    let t = wait(pid)
    return t.exitCode == 0 ? text : nil
  }

  /// Everything readable from `fd` until end of file.
  static func readAll(_ fd: Int32) -> String {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = read(fd, &chunk, chunk.count)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      bytes.append(contentsOf: chunk[..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

/// The first executable on PATH.
enum Which {
  /// The first executable `name` on PATH (`name` itself when it holds a slash).
  static func find(_ name: String) -> String? {
    if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
    let path = RunCommand.environment("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
      let candidate = Files.join(String(dir), name)
      if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
  }
}

/// Files, folders and paths for the subcommands (no Foundation).
enum Files {
  /// `name` inside `dir`.
  static func join(_ dir: String, _ name: String) -> String {
    dir.hasSuffix("/") ? dir + name : dir + "/" + name
  }

  /// Everything before the last slash ("." when there is none, "/" for the root).
  static func directoryName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }

  static func currentDirectory() -> String? {
    guard let cwd = getcwd(nil, 0) else { return nil }
    defer { free(cwd) }
    return String(cString: cwd)
  }

  /// The target of the symbolic link `path`, or nil.
  static func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// A new private folder under $TMPDIR (or /tmp); the caller removes it.
  static func temporaryDirectory(_ label: String) throws -> String {
    let base = RunCommand.environment("TMPDIR") ?? "/tmp"
    var template = Array((Files.join(base, "goalloc-\(label).XXXXXX")).utf8CString)
    guard let p = mkdtemp(&template) else {
      printError("goalloc: cannot create a temporary folder in \(base): \(String(cString: strerror(errno)))")
      throw ExitCode.failure
    }
    return String(cString: p)
  }

  /// Removes a folder made by `temporaryDirectory` and the plain files in it.
  static func removeDirectory(_ path: String) {
    if let d = opendir(path) {
      while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name == "." || name == ".." { continue }
        unlink(join(path, name))
      }
      closedir(d)
    }
    rmdir(path)
  }

  /// Creates `path` and any missing parent folders; prints one line and throws on failure.
  static func makeDirectories(_ path: String, command: String) throws {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
      prefix += "/" + part
      if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
        printError("\(command): cannot create \(prefix): \(String(cString: strerror(errno)))")
        throw ExitCode.failure
      }
    }
  }

  static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

  /// The last component of `path`.
  static func baseName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
  }

  /// The first `limit` bytes of a file, or nil.
  static func readBytes(_ path: String, limit: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: limit)
    var n = 0
    while n < limit {
      let r = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + n, limit - n) }
      if r < 0 && errno == EINTR { continue }
      if r <= 0 { break }
      n += r
    }
    bytes.removeLast(limit - n)
    return bytes
  }

  /// The whole file, or nil.
  static func read(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return ChildProcess.readAll(fd)
  }

  /// Writes `bytes` to `path` (created or truncated); prints one line and throws on failure.
  static func writeFile(_ path: String, _ bytes: [UInt8], command: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      printError("\(command): cannot write \(path): \(String(cString: strerror(errno)))")
      throw ExitCode.failure
    }
    defer { close(fd) }
    var off = 0
    while off < bytes.count {
      let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 {
        printError("\(command): cannot write \(path): \(String(cString: strerror(errno)))")
        throw ExitCode.failure
      }
      off += n
    }
  }

  static func writeFile(_ path: String, _ text: String, command: String) throws {
    try writeFile(path, Array(text.utf8), command: command)
  }

  /// `path` made absolute against the current directory.
  static func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : join(currentDirectory() ?? ".", path)
  }
}
