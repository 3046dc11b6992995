// The steps of `goalloc bench`: finding the repository, compiling the workloads and the launcher
// (and Go's mirror), one timed run under Benchmarks/harness/measure.c, and callgrind's
// instructions per operation. Every child starts through ChildProcess (`BenchChild`): without
// goalloc's own LD_PRELOAD, and with ^C stopping the whole suite.

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

  /// One timed run: `measure REPORT TIMEOUT PRELOAD PROGRAM ARGS...`, output checked.
  func measure(_ workload: Workload, _ allocator: Allocator, bin: String, logs: String) -> Run {
    let base = Files.join(logs, "\(workload.name).\(allocator.name)")
    let report = base + ".report", outFile = base + ".out", errFile = base + ".err"
    let program = allocator.isGo ? Files.join(bin, "gowork") : Files.join(bin, workload.program)
    let args = allocator.isGo ? [workload.program] + workload.arguments(quick: quick, go: true)
                              : workload.arguments(quick: quick, go: false)
    unlink(report)
    let status = BenchChild.run([Files.join(bin, "measure"), report, String(timeout), allocator.preload ?? "-", program] + args,
                                stdout: outFile, stderr: errFile)
    var run = Run()
    guard status.exitCode == 0, let fields = Files.read(report).map(Report.parseFields) else {
      run.failure = "measure failed (status \(status.waitStatus))"
      return run
    }
    run.sample = Sample(wallNs: Double(fields["wall_ns"] ?? "") ?? 0,
                        cpuUs: (Double(fields["user_us"] ?? "") ?? 0) + (Double(fields["sys_us"] ?? "") ?? 0),
                        maxRssKiB: Double(fields["maxrss_kib"] ?? "") ?? 0)
    run.status = fields["status"] ?? "?"
    let output = Files.read(outFile) ?? ""
    run.line = output.split(separator: "\n").last { $0.hasPrefix("\(workload.program):") }.map(String.init) ?? ""
    if run.status != "exit:0" {
      let err = (Files.read(errFile) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
      run.failure = "\(run.status)" + (err.isEmpty ? "" : ": \(err)")
    } else if run.line.isEmpty {
      run.failure = "no result line from \(workload.program)"
    }
    return run
  }

  /// Instructions per operation: (Ir(large) - Ir(small)) / (ops(large) - ops(small)).
  func instructionsPerOp(valgrind: String, _ workload: Workload, _ allocator: Allocator,
                         small: [String], large: [String], bin: String, logs: String) -> Double? {
    var points: [(ir: Double, ops: Double)] = []
    for (k, args) in [small, large].enumerated() {
      let base = Files.join(logs, "callgrind.\(workload.name).\(allocator.name).\(k)")
      let status = BenchChild.run([valgrind, "--tool=callgrind", "--callgrind-out-file=\(base).cg",
                                   Files.join(bin, workload.program)] + args,
                                  stdout: base + ".out", stderr: base + ".err", set: [("LD_PRELOAD", allocator.preload)])
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

