// The application rows of `goalloc bench`: installed programs, run under each allocator with
// LD_PRELOAD through the same launcher, report and checks as the C workloads (BenchRunner.swift).
//
//   redis   redis-server on a free loopback port (no persistence), driven by redis-benchmark. The
//           server is the measured process (its CPU time and peak RSS); the row's time is the
//           benchmark's wall time, and the result line has the requests per second.
//   python  CPython with PYTHONMALLOC=malloc (and a fixed hash seed) on Benchmarks/apps/pyalloc.py.
//   sqlite  sqlite3 on an in-memory database and a write-heavy script made by BenchAppInputs.swift.
//   gcc     gcc -O2 -c on a C file made by BenchAppInputs.swift (the driver, cc1 and as all run under
//           the allocator; peak RSS is the largest of them, as wait4 reports it).
//
// A row whose programs are not installed is skipped with a note naming the Debian package.
// Under "glibc" an application gets LD_PRELOAD=libc.so.6 so that one linked with another malloc
// (Debian's redis-server links libjemalloc) runs on glibc's malloc too.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An application row's program (Workload.app).
enum App: String, Sendable {
  case redis, python, sqlite, gcc

  /// The programs the row runs, each with the Debian package that installs it.
  var programs: [(name: String, package: String)] {
    switch self {
    case .redis: return [("redis-server", "redis-server"), ("redis-benchmark", "redis-tools"), ("redis-cli", "redis-tools")]
    case .python: return [("python3", "python3")]
    case .sqlite: return [("sqlite3", "sqlite3")]
    case .gcc: return [("gcc", "gcc")]
    }
  }
}

/// The application rows' programs as found on this machine, and their inputs in OUT/apps/.
struct Apps {
  /// Program name -> path (for python3, the interpreter itself rather than a wrapper such as a pyenv shim).
  var paths: [String: String] = [:]
  /// Row name -> its generated input (the sqlite row's script, the gcc row's C file).
  var inputs: [String: String] = [:]
  var root = ""
  var dir = ""
  /// glibc's libc.so.6, preloaded under "glibc" (see the top of this file).
  var libc: String?

  /// Finds the programs of the application rows among `workloads` and writes their inputs to `dir`.
  /// Returns the workloads that can run (every C workload, and the rows whose programs are
  /// here) and a note for each row skipped.
  static func prepare(_ workloads: [Workload], root: String, dir: String, quick: Bool) throws
    -> (apps: Apps, runnable: [Workload], notes: [String]) {
    var apps = Apps(root: root, dir: dir, libc: libcPath())
    var runnable: [Workload] = [], notes: [String] = []
    let rows = workloads.filter { $0.app != nil }
    if !rows.isEmpty { try Files.makeDirectories(dir, command: "goalloc bench") }
    for workload in workloads {
      guard let app = workload.app else { runnable.append(workload); continue }
      let missing = app.programs.filter { Which.find($0.name) == nil }
      if !missing.isEmpty {
        let names = missing.count == 1 ? missing[0].name
          : missing.dropLast().map(\.name).joined(separator: ", ") + " and " + missing.last!.name
        let packages = Set(missing.map(\.package)).sorted().joined(separator: " ")
        notes.append("\(workload.name) skipped: \(names) \(missing.count == 1 ? "is" : "are") not installed "
                     + "(apt-get install \(packages), or Scripts/install-peers.sh).")
        continue
      }
      for (name, _) in app.programs { apps.paths[name] = Which.find(name) }
      let arg = Int(workload.arguments(quick: quick, go: false).first ?? "") ?? 1
      switch app {
      case .python:
        // A pyenv shim is a shell script: ask the interpreter for its own path.
        let probe = BenchChild.capture([apps.paths["python3"]!, "-c", "import sys; print(sys.executable)"])?.trimmed
        guard let python = probe, python.hasPrefix("/") else {
          notes.append("\(workload.name) skipped: python3 does not run (\(apps.paths["python3"]!)).")
          continue
        }
        apps.paths["python3"] = python
      case .sqlite:
        let file = Files.join(dir, "sqlwrite-\(arg).sql")
        try Files.writeFile(file, AppInputs.sqlScript(steps: arg), command: "goalloc bench")
        apps.inputs[workload.name] = file
      case .gcc:
        let file = Files.join(dir, "genprog-\(arg).c")
        try Files.writeFile(file, AppInputs.cSource(functions: arg), command: "goalloc bench")
        apps.inputs[workload.name] = file
      case .redis:
        try Files.makeDirectories(Files.join(dir, "redis"), command: "goalloc bench")
      }
      runnable.append(workload)
    }
    return (apps, runnable, notes)
  }

  /// The libc.so.6 this process runs on (from /proc/self/maps), or nil.
  static func libcPath() -> String? {
    for line in (Files.read("/proc/self/maps") ?? "").split(separator: "\n") {
      if let path = line.split(separator: " ").last, path.hasSuffix("/libc.so.6") { return String(path) }
    }
    return nil
  }

  /// What an application is run with under `allocator`: libc.so.6 under glibc (see the top).
  func preload(_ allocator: Allocator) -> String? { allocator.name == "glibc" ? libc : allocator.preload }

  /// The command line of one run of the python, sqlite or gcc row (`base`: its log files' prefix).
  func invocation(_ app: App, _ workload: Workload, _ allocator: Allocator, base: String,
                  quick: Bool) -> BenchCommand.Invocation {
    let args = workload.arguments(quick: quick, go: false)
    switch app {
    case .python:
      return .init(argv: [paths["python3"]!, Files.join(root, "Benchmarks/apps/pyalloc.py")] + args,
                   preload: preload(allocator),
                   env: [("PYTHONMALLOC", "malloc"), ("PYTHONHASHSEED", "0"), ("PYTHONDONTWRITEBYTECODE", "1")])
    case .sqlite:
      return .init(argv: [paths["sqlite3"]!, "-bail", ":memory:", ".read '\(inputs[workload.name]!)'"], preload: preload(allocator))
    case .gcc:
      unlink(base + ".o")
      return .init(argv: [paths["gcc"]!, "-O2", "-c", inputs[workload.name]!, "-o", base + ".o"], preload: preload(allocator))
    case .redis:
      fatalError("the redis row runs through measureRedis")
    }
  }

  /// The result line of a python, sqlite or gcc run that exited 0, or why there is none.
  func resultLine(_ app: App, _ workload: Workload, output: String, base: String) -> (line: String, failure: String?) {
    if app == .gcc {
      var st = stat()
      defer { unlink(base + ".o") }
      guard stat(base + ".o", &st) == 0, st.st_size > 0 else { return ("", "gcc wrote no object file") }
      return ("gcc: compiled \(Files.baseName(inputs[workload.name]!)) at -O2 to \(st.st_size / 1024) KiB of object code", nil)
    }
    let line = output.split(separator: "\n").last { $0.hasPrefix("\(workload.program):") }.map(String.init) ?? ""
    return (line, line.isEmpty ? "no result line from \(app.rawValue) (\(workload.program): ...)" : nil)
  }

  // MARK: redis

  /// One run of the redis row: the server starts under `measure` with the allocator, answers
  /// redis-cli's PING, takes redis-benchmark's load (the benchmark itself under `measure` too, with
  /// no preload: its wall time is the row's time) and is shut down (SHUTDOWN NOSAVE) so that
  /// `measure` reads its peak RSS at exit. A server that does not stop within 10 s is killed.
  func measureRedis(_ bench: BenchCommand, _ workload: Workload, _ allocator: Allocator, base: String,
                    bin: String) -> BenchCommand.Run {
    var run = BenchCommand.Run()
    guard let port = Apps.freePort() else {
      run.failure = "no free TCP port on 127.0.0.1"
      return run
    }
    let cli = paths["redis-cli"]!, p = String(port)
    let serverDir = Files.join(dir, "redis")   // its working folder (nothing is saved there)
    let server = BenchCommand.Invocation(
      argv: [paths["redis-server"]!, "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", serverDir, "--loglevel", "warning"],
      preload: preload(allocator))
    let serverBase = base + ".server"
    unlink(serverBase + ".report")
    guard let pid = BenchChild.start(bench.measureArgv(server, base: serverBase, bin: bin),
                                     stdout: serverBase + ".out", stderr: serverBase + ".err") else {
      run.failure = "cannot start measure for redis-server"
      return run
    }
    // Stops the server: SHUTDOWN NOSAVE, then (if it is still there after 10 s) SIGALRM to the
    // launcher, which kills its child and reports a timeout. Returns the server's report.
    func stopServer() -> BenchCommand.Measured {
      _ = BenchChild.capture([cli, "-h", "127.0.0.1", "-p", p, "shutdown", "nosave"])
      let deadline = Clock.now() + 10
      var ended: ChildProcess.Termination?
      while ended == nil {
        ended = BenchChild.poll(pid)
        if ended == nil && Clock.now() > deadline {
          kill(pid, SIGALRM)
          ended = ChildProcess.wait(pid, ignoringInterrupts: false)
        }
        if ended == nil { usleep(10_000) }
      }
      return bench.readMeasured(base: serverBase, launcher: ended!)
    }

    // Ready when it answers PING (within 20 s); a server that exits first has failed.
    let ready = Clock.now() + 20
    var answered = false
    while !answered && Clock.now() < ready {
      if let ended = BenchChild.poll(pid) {
        let m = bench.readMeasured(base: serverBase, launcher: ended)
        run.failure = "redis-server exited before answering: \(m.failure ?? m.status)"
        return run
      }
      answered = BenchChild.capture([cli, "-h", "127.0.0.1", "-p", p, "ping"])?.trimmed == "PONG"
      if !answered { usleep(20_000) }
    }
    guard answered else {
      _ = stopServer()
      run.failure = "redis-server did not answer on port \(p) within 20 s (see \(serverBase).err)"
      return run
    }

    let requests = workload.arguments(quick: bench.quick, go: false).first ?? "100000"
    let load = BenchCommand.Invocation(
      argv: [paths["redis-benchmark"]!, "-h", "127.0.0.1", "-p", p, "-t", "set,get,lpush,lpop", "-n", requests,
             "-r", "100000", "-P", "16", "-d", "64", "-q"],
      preload: nil)
    let client = bench.runMeasured(load, base: base, bin: bin)
    let serverRun = stopServer()

    run.sample = Sample(wallNs: client.sample.wallNs, cpuUs: serverRun.sample.cpuUs, maxRssKiB: serverRun.sample.maxRssKiB)
    run.status = serverRun.status
    if let failure = serverRun.failure {
      run.failure = "redis-server: \(failure)"
    } else if let failure = client.failure {
      run.failure = "redis-benchmark: \(failure)"
    } else if let line = Apps.redisLine(client.output, requests: Int(requests) ?? 0) {
      run.line = line
      run.sample.rate = Report.parseFields(line)["rps"].flatMap(Double.init)
    } else {
      run.failure = "no requests-per-second lines from redis-benchmark (see \(base).out)"
    }
    return run
  }

  /// `redis: ops=N rps=R SET=.. GET=.. ...` from redis-benchmark -q's output ("SET: 812345.50
  /// requests per second, p50=...", after progress lines ended by carriage returns); ops counts
  /// the requests of all four tests, rps is over all of them (ops / the sum of the tests' times).
  /// Nil when a test's line is missing.
  static func redisLine(_ output: String, requests: Int) -> String? {
    var rates: [(String, Double)] = []
    for line in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) where line.contains(" requests per second") {
      let parts = line.split(separator: " ")
      guard parts.count > 1, parts[0].hasSuffix(":"), let rps = Double(parts[1]), rps > 0 else { continue }
      rates.append((String(parts[0].dropLast()), rps))
    }
    guard rates.count == 4 else { return nil }
    let overall = Double(rates.count) / rates.reduce(0) { $0 + 1 / $1.1 }
    return "redis: ops=\(requests * rates.count) rps=\(Int(overall)) "
      + rates.map { "\($0.0)=\(Int($0.1))" }.joined(separator: " ") + " (requests/s, redis-benchmark -P 16 -d 64)"
  }

  /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
  static func freePort() -> UInt16? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { a in
      a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
        bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
      }
    }
    guard bound else { return nil }
    return UInt16(bigEndian: addr.sin_port)
  }
}
