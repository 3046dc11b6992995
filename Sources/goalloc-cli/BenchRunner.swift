// The steps of `goalloc bench`: finding the repository, compiling the workloads and the launcher
// (and Go's mirror), one timed run under Benchmarks/harness/measure.c (a C workload's or an
// application's: the same launcher, report and checks), and callgrind's instructions per
// operation. Every child starts through ChildProcess (`BenchChild`): without goalloc's own
// LD_PRELOAD, and with ^C stopping the whole suite.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension BenchCommand {
  /// The folder that holds Benchmarks/workloads/: --source, the current directory or one of its
  /// parents, or a parent of this executable's folder (.build/<triple>/release/goalloc-cli).
  func locateSourceRoot() throws -> String {
    if let source { return Files.absolute(source) }
    var candidates: [String] = []
    var dir = Files.currentDirectory() ?? "."
    for _ in 0..<4 { candidates.append(dir); dir = Files.directoryName(dir) }
    if let exe = Files.readLink("/proc/self/exe") {
      dir = Files.directoryName(exe)
      for _ in 0..<5 { candidates.append(dir); dir = Files.directoryName(dir) }
    }
    for candidate in candidates where access(Files.join(candidate, "Benchmarks/workloads/pair.c"), R_OK) == 0 {
      return candidate
    }
    printError("goalloc bench: Benchmarks/workloads/ not found; run from the repository root or pass --source")
    throw ExitCode.failure
  }

  func compileC(_ source: String, to output: String, logs: String) throws {
    let err = Files.join(logs, "cc-\(Files.baseName(output)).err")
    let status = BenchChild.run([cc, "-O2", "-pthread", "-fno-builtin", "-o", output, source], stdout: err, stderr: err)
    guard status.exitCode == 0 else {
      printError("goalloc bench: \(cc) failed on \(source):\n" + (Files.read(err) ?? ""))
      throw ExitCode.failure
    }
  }

  func buildGo(go: String, source: String, output: String, outDir: String, logs: String) -> Bool {
    guard access(source, R_OK) == 0 else { return false }
    let err = Files.join(logs, "go-build.err")
    let cache = Files.join(outDir, "gocache")
    let status = BenchChild.run([go, "build", "-o", output, source], stdout: err, stderr: err,
                                set: [("GOCACHE", cache), ("GOPATH", Files.join(outDir, "gopath")), ("GO111MODULE", "off"),
                                      ("GOFLAGS", ""), ("CGO_ENABLED", "0")])
    return status.exitCode == 0
  }

  struct Run {
    var sample = Sample()
    var status = ""
    var failure: String?
    var line = ""
  }

  /// What one timed run starts: the program and its arguments, the library to preload (nil:
  /// none) and variables to set in its environment.
  struct Invocation {
    var argv: [String]
    var preload: String?
    var env: [(String, String?)] = []
  }

  /// One run under `measure REPORT TIMEOUT PRELOAD PROGRAM ARGS...`: its numbers, its status and
  /// its output (LOG.out, LOG.err, LOG.report).
  struct Measured {
    var sample = Sample()
    var status = ""
    var output = ""
    var failure: String?
  }

  /// The launcher's command line for `invocation`, reporting to `base`.report.
  func measureArgv(_ invocation: Invocation, base: String, bin: String) -> [String] {
    [Files.join(bin, "measure"), base + ".report", String(timeout), invocation.preload ?? "-"] + invocation.argv
  }

  /// Runs `invocation` under `measure` to its end and reads what it reports.
  func runMeasured(_ invocation: Invocation, base: String, bin: String) -> Measured {
    unlink(base + ".report")
    let status = BenchChild.run(measureArgv(invocation, base: base, bin: bin), stdout: base + ".out", stderr: base + ".err",
                                set: invocation.env)
    return readMeasured(base: base, launcher: status)
  }

  /// The report `measure` wrote to `base`.report (after it ended with `launcher`), and the output.
  func readMeasured(base: String, launcher: ChildProcess.Termination) -> Measured {
    var m = Measured()
    guard launcher.exitCode == 0, let fields = Files.read(base + ".report").map(Report.parseFields) else {
      m.failure = "measure failed (status \(launcher.waitStatus))"
      return m
    }
    m.sample = Sample(wallNs: Double(fields["wall_ns"] ?? "") ?? 0,
                      cpuUs: (Double(fields["user_us"] ?? "") ?? 0) + (Double(fields["sys_us"] ?? "") ?? 0),
                      maxRssKiB: Double(fields["maxrss_kib"] ?? "") ?? 0)
    m.status = fields["status"] ?? "?"
    m.output = Files.read(base + ".out") ?? ""
    if m.status != "exit:0" {
      let err = (Files.read(base + ".err") ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
      m.failure = "\(m.status)" + (err.isEmpty ? "" : ": \(err)")
    }
    return m
  }

  /// One timed run of a workload under an allocator: a C workload, or an application row
  /// (BenchApps.swift); its output checked for the result line.
  func measure(_ workload: Workload, _ allocator: Allocator, bin: String, logs: String, apps: Apps) -> Run {
    let base = Files.join(logs, "\(workload.name).\(allocator.name)")
    if workload.app == .redis { return apps.measureRedis(self, workload, allocator, base: base, bin: bin) }
    let invocation: Invocation
    if let app = workload.app {
      invocation = apps.invocation(app, workload, allocator, base: base, quick: quick)
    } else if allocator.isGo {
      invocation = Invocation(argv: [Files.join(bin, "gowork"), workload.program] + workload.arguments(quick: quick, go: true))
    } else {
      invocation = Invocation(argv: [Files.join(bin, workload.program)] + workload.arguments(quick: quick, go: false),
                              preload: allocator.preload)
    }
    let m = runMeasured(invocation, base: base, bin: bin)
    var run = Run(sample: m.sample, status: m.status, failure: m.failure)
    guard m.failure == nil else { return run }
    if let app = workload.app {
      (run.line, run.failure) = apps.resultLine(app, workload, output: m.output, base: base)
    } else {
      run.line = m.output.split(separator: "\n").last { $0.hasPrefix("\(workload.program):") }.map(String.init) ?? ""
      if run.line.isEmpty { run.failure = "no result line from \(workload.program)" }
    }
    if let field = workload.rateField, run.failure == nil {
      run.sample.rate = Report.parseFields(run.line)[field].flatMap(Double.init)
    }
    return run
  }

  /// Instructions per operation: (Ir(large) - Ir(small)) / (ops(large) - ops(small)).
  func instructionsPerOp(valgrind: String, _ workload: Workload, _ allocator: Allocator,
                         small: [String], large: [String], bin: String, logs: String) -> Double? {
    var points: [(ir: Double, ops: Double)] = []
    for (k, args) in [small, large].enumerated() {
      let base = Files.join(logs, "callgrind.\(workload.name).\(allocator.name).\(k)")
      // Go: gowork with the workload's name first; no asynchronous preemption (its signals
      // break callgrind's signal tracking).
      let argv = allocator.isGo ? [Files.join(bin, "gowork"), workload.program] : [Files.join(bin, workload.program)]
      let status = BenchChild.run([valgrind, "--tool=callgrind", "--callgrind-out-file=\(base).cg"] + argv + args,
                                  stdout: base + ".out", stderr: base + ".err",
                                  set: [("LD_PRELOAD", allocator.preload)]
                                    + (allocator.isGo ? [("GODEBUG", "asyncpreemptoff=1")] : []))
      unlink(base + ".cg")
      guard status.exitCode == 0,
            let err = Files.read(base + ".err"), let out = Files.read(base + ".out"),
            let irText = err.split(separator: "\n").last(where: { $0.contains("Collected :") })?
              .split(separator: ":").last?.trimmed,
            let ir = Double(irText),
            let ops = Report.parseFields(String(out.split(separator: "\n").last { $0.contains("ops=") } ?? ""))["ops"]
              .flatMap(Double.init)
      else { return nil }
      points.append((ir, ops))
    }
    guard points[1].ops > points[0].ops else { return nil }
    return (points[1].ir - points[0].ir) / (points[1].ops - points[0].ops)
  }
}

/// The benchmark's children (compilers, the launcher, valgrind, sha256sum, git, dpkg-query), run by
/// ChildProcess without this process's LD_PRELOAD: a child gets only the allocator it measures.
enum BenchChild {
  /// This process's environment without LD_PRELOAD, with `set` applied (nil removes a variable).
  static func environment(_ set: [(String, String?)] = []) -> [String] {
    ChildProcess.environment([("LD_PRELOAD", nil)] + set)
  }

  /// Runs `argv` to the end (standard output and error to files, nil: inherited), not ignoring
  /// ^C: it stops the suite. A program that cannot start reads as exit status 127.
  static func run(_ argv: [String], stdout: String?, stderr: String?,
                  set: [(String, String?)] = []) -> ChildProcess.Termination {
    let ended = try? ChildProcess.runToFiles(argv, env: environment(set), stdout: stdout, stderr: stderr,
                                             command: nil, ignoringInterrupts: false)
    return ended ?? ChildProcess.Termination(waitStatus: 127 << 8)
  }

  /// Starts `argv` as `run` does (standard input from /dev/null, output to files) without waiting
  /// for it: its pid, or nil when it cannot start or a file cannot be written.
  static func start(_ argv: [String], stdout: String, stderr: String, set: [(String, String?)] = []) -> pid_t? {
    let o = open(stdout, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    let e = open(stderr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    let i = open("/dev/null", O_RDONLY | O_CLOEXEC)
    defer { for fd in [o, e, i] where fd >= 0 { close(fd) } }
    guard o >= 0, e >= 0, i >= 0 else { return nil }
    return try? ChildProcess.spawn(argv, env: environment(set), stdinFD: i, stdoutFD: o, stderrFD: e, command: nil)
  }

  /// Whether the child `pid` has ended (its status, which is then collected), or nil if it runs on.
  static func poll(_ pid: pid_t) -> ChildProcess.Termination? {
    var status: Int32 = 0
    let r = waitpid(pid, &status, WNOHANG)
    if r == pid { return ChildProcess.Termination(waitStatus: status) }
    return r < 0 && errno != EINTR ? ChildProcess.Termination(waitStatus: 127 << 8) : nil
  }

  /// The standard output of `argv` when it succeeds, or nil.
  static func capture(_ argv: [String]) -> String? {
    ChildProcess.capture(argv, env: environment())
  }
}

/// Seconds on the monotonic clock (the suite's elapsed time).
enum Clock {
  static func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
  }
}

