// The GC mode (stage 1) through its C API: Fixtures/gc.c, linked with libgoalloc.so (and run
// under it), one scenario per process.
import Foundation
import Testing

@Suite("GC mode: collection through the C API")
struct GCTests {
  static func executable() async throws -> URL { try await FixtureBuilder.shared.linkedToLibrary("gc") }

  static func run(_ scenario: String, _ extra: [String] = [], environment: [String: String] = [:],
                  timeout: Double = 120) async throws -> ProcessResult {
    try await Subprocess.run(try await executable().path, [scenario] + extra, preload: .goalloc, environment: environment,
                             timeout: timeout)
  }

  @Test("gc-timeline: a run's collections logged (gclog) and drawn, one pause bar each; --from draws the log again")
  func gcTimeline() async throws {
    let cli = try Paths.requireCLI()
    let dir = try Paths.freshDirectory("gctimeline")
    let svg = dir.appendingPathComponent("t.svg"), log = dir.appendingPathComponent("gc.log")
    let r = try await Subprocess.run(cli.path, ["gc-timeline", "-o", svg.path, "--log", log.path, "--",
                                                try await Self.executable().path, "reach"], timeout: 120)
    #expect(r.exitedCleanly, "\(r)")
    let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
    #expect(lines.first == "# goalloc allocfreetrace v1", "\(lines.prefix(3))")
    let numbers = lines.dropFirst().compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
    #expect(numbers.count >= 14 && numbers == Array(1...numbers.count), "\(numbers)")
    #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("g ") && $0.split(separator: " ").count == 9 && $0.hasSuffix(" 1") },
            "every collection forced: \(lines.prefix(4))")
    let summary = try #require(r.stderrLines.first { $0.hasPrefix("goalloc gc-timeline: ") }, "\(r)")
    #expect(summary.contains("\(numbers.count) collections (\(numbers.count) forced)"), "\(summary)")
    let text = try String(contentsOf: svg, encoding: .utf8)
    #expect(text.hasPrefix("<svg") && text.components(separatedBy: "data-series=\"pause\"").count - 1 == numbers.count)
    #expect(text.contains("data-series=\"heap\"") && text.contains("data-series=\"goal\""))
    let again = try await Subprocess.run(cli.path, ["gc-timeline", "-o", svg.path, "--from", log.path], timeout: 30)
    #expect(again.exitedCleanly && again.stderrLines.contains { $0.hasSuffix(summary.split(separator: ":", maxSplits: 2).last.map(String.init) ?? "?") }, "\(again)")
    let bad = try await Subprocess.run(cli.path, ["gc-timeline", "-o", svg.path], timeout: 30)
    #expect(bad.status == 64 && bad.stderrLines.count == 1, "\(bad)")
  }

  @Test("kept from a global, a deep stack frame, another GC object, an uncollectable object, an added root, another thread's stack; reclaimed once dropped")
  func reachability() async throws {
    expectScenarioOK(try await Self.run("reach"), atLeast: 22)
  }

  @Test("a noscan block full of pointers retains nothing; a scan block retains")
  func noscanHonesty() async throws { expectScenarioOK(try await Self.run("noscan"), atLeast: 2) }

  @Test("interior pointers keep an object, one past the end does not; goalloc_gc_base")
  func interiorPointers() async throws { expectScenarioOK(try await Self.run("interior"), atLeast: 4) }

  @Test("scan memory is zeroed when reused (small and large)")
  func zeroedOnReuse() async throws { expectScenarioOK(try await Self.run("zero"), atLeast: 2) }

  @Test("free() and goalloc_gc_free of collected objects, realloc keeps kind, set_percent")
  func explicitFree() async throws { expectScenarioOK(try await Self.run("free"), atLeast: 6) }

  @Test("a collection from a signal handler is refused with one line")
  func signalHandlerRefused() async throws {
    let r = try await Self.run("signal")
    expectScenarioOK(r, atLeast: 2)
    #expect(r.stderr.contains("goalloc: gc: collection refused: called from a signal handler"), "\(r)")
  }

  @Test("stop-the-world torture: malloc/free loops, GC loops and a thread blocked in read while 200 collections run")
  func stopTheWorldTorture() async throws {
    expectScenarioOK(try await Self.run("torture", ["200"], timeout: 120), atLeast: 4)
  }

  @Test("fork while other threads allocate and collect")
  func forkWhileAllocating() async throws { expectScenarioOK(try await Self.run("fork"), atLeast: 1) }

  @Test("pacing: with live L at GOGC=100 the collected heap peaks near 2L")
  func pacing() async throws { expectScenarioOK(try await Self.run("pacing"), atLeast: 2) }

  @Test("the memory limit triggers collections with GOGC off and holds the heap under it")
  func memoryLimit() async throws { expectScenarioOK(try await Self.run("memlimit"), atLeast: 3) }

  // Lazy sweep (MGCSweep): gcsweep=ondemand leaves every collected span unswept after a
  // collection until an allocation or the next cycle reaches it.
  static let onDemand = ["GOALLOC_DEBUG": "gcsweep=ondemand,badfree=warn,scavenger=0"]

  @Test("lazy sweep: gc_base, free of live and of collected objects, reuse and zeroing while spans are unswept")
  func lazySweep() async throws {
    let r = try await Self.run("lazy", environment: Self.onDemand)
    expectScenarioOK(r, atLeast: 16)
    #expect(r.stderr.contains("double free detected (the collector freed it)"), "\(r)")
  }

  @Test("random allocate/drop/free/realloc/collect interleavings keep every held object, in each sweep mode and with the object queue",
        arguments: ["gcsweep=ondemand", "gcsweep=lazy", "gcsweep=eager", "gcobjqueue=1"])
  func sweepFuzz(mode: String) async throws {
    expectScenarioOK(try await Self.run("fuzz", ["60000"], environment: ["GOALLOC_DEBUG": mode], timeout: 300), atLeast: 3)
  }

  @Test("threads allocate and free while the main thread collects: refills meet unswept spans",
        arguments: ["gcsweep=ondemand", "gcsweep=lazy"])
  func lazySweepThreads(mode: String) async throws {
    expectScenarioOK(try await Self.run("lazythreads", ["100"], environment: ["GOALLOC_DEBUG": mode]), atLeast: 3)
  }

  @Test("torture with the sweep left to allocation (gcsweep=ondemand)")
  func tortureOnDemand() async throws {
    expectScenarioOK(try await Self.run("torture", ["100"], environment: ["GOALLOC_DEBUG": "gcsweep=ondemand"]), atLeast: 4)
  }

  // Parallel marking (GOALLOC_GC_PROCS): the scenarios again with one mark worker (the
  // collecting thread alone) and with four (three helper threads, more than this machine may
  // have CPUs: the work is shared whatever the scheduling).
  @Test("the GC scenarios with 1 and with 4 mark workers", arguments: ["1", "4"])
  func markWorkers(procs: String) async throws {
    try await Self.battery(["GOALLOC_GC_PROCS": procs], fuzz: "30000", lazythreads: "50", torture: "50")
  }

  /// The scenarios every marking configuration must pass, at the sizes given.
  static func battery(_ env: [String: String], fuzz: String, lazythreads: String, torture: String,
                      sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let cases: [(String, [String], Int)] = [
      ("reach", [], 22), ("noscan", [], 2), ("interior", [], 4), ("zero", [], 2), ("free", [], 6),
      ("fuzz", [fuzz], 3), ("lazythreads", [lazythreads], 3), ("torture", [torture], 4), ("fork", [], 1),
      ("pacing", [], 2), ("assist", ["2500000"], 4),
    ]
    for (scenario, args, n) in cases {
      expectScenarioOK(try await Self.run(scenario, args, environment: env), atLeast: n, sourceLocation: sourceLocation)
    }
  }

  @Test("a random graph against a shadow model, with 1, 2 and 4 mark workers, and with the object queue",
        arguments: [["GOALLOC_GC_PROCS": "1"], ["GOALLOC_GC_PROCS": "2"], ["GOALLOC_GC_PROCS": "4"],
                    ["GOALLOC_GC_PROCS": "4", "GOALLOC_DEBUG": "gcobjqueue=1"]])
  func randomGraph(environment: [String: String]) async throws {
    expectScenarioOK(try await Self.run("graph", ["120000"], environment: environment), atLeast: 4)
  }

  @Test("the GC CPU limiter: a memory limit the live data nearly fills takes about half the time, not all of it")
  func cpuLimiter() async throws {
    // Without the limiter (before MGCLimiter) the pauses took 89 % of the time here.
    expectScenarioOK(try await Self.run("limiter", ["3"]), atLeast: 3)
  }

  @Test("GOALLOC_GC_PROCS: a malformed value warns and marks with the default")
  func badProcs() async throws {
    let r = try await Self.run("noscan", environment: ["GOALLOC_GC_PROCS": "0"])
    expectScenarioOK(r, atLeast: 2)
    #expect(r.stderr.contains("GOALLOC_GC_PROCS must be a number of mark workers"), "\(r)")
  }

  @Test("the allocation trace records each collection as a g line; trace summarize counts them")
  func traceRecordsCollections() async throws {
    let dir = try Paths.freshDirectory("gc-trace")
    let file = dir.appendingPathComponent("gc.trace").path
    let r = try await Self.run("free", environment: ["GOALLOC_DEBUG": "allocfreetrace=\(file)"])
    expectScenarioOK(r, atLeast: 6)
    let text = try String(contentsOfFile: file, encoding: .utf8)
    let g = text.split(separator: "\n").filter { $0.hasPrefix("g ") }.map { $0.split(separator: " ").compactMap { Int($0) } }
    #expect(g.count >= 2 && g.allSatisfy { $0.count == 8 }, "\(g)")
    // Numbered 1, 2, ... in order; time never goes back; heap after <= heap before plus the
    // held spans' slack; explicit collections marked forced.
    #expect(g.map { $0[0] } == Array(1...g.count), "\(g)")
    #expect(zip(g, g.dropFirst()).allSatisfy { $0[1] <= $1[1] }, "\(g)")
    #expect(g.allSatisfy { $0[7] == 1 && $0[6] > 0 && $0[5] > 0 }, "\(g)")
    let cli = try Paths.requireCLI()
    let sum = try await Subprocess.run(cli.path, ["trace", "summarize", "--no-symbols", file], timeout: 60)
    #expect(sum.exitedCleanly, "\(sum)")
    #expect(sum.stdoutLines.contains { $0.hasPrefix("  collections") && $0.contains(" \(g.count) (\(g.count) forced)") }, "\(sum)")
    let replay = try await Subprocess.run(cli.path, ["trace", "replay", file, "--runs", "1", "--allocator", "glibc"], timeout: 120)
    #expect(replay.exitedCleanly, "g lines are skipped by replay\n\(replay)")
  }

  /// gc <n> @<s>s <p>%: <a>+<b>+<c> ms clock, <cpu> ms cpu, <x>-><y>-><z> MB, <g> MB goal,
  /// <s> MB stacks, <g> MB globals, <p> P[ (forced)]
  nonisolated(unsafe) static let gctraceLine = #/gc (\d+) @\d+\.\d{3}s \d+%: [0-9.]+\+[0-9.]+\+[0-9.]+ ms clock, [0-9.]+ ms cpu, \d+->\d+->\d+ MB, \d+ MB goal, \d+ MB stacks, \d+ MB globals, \d+ P( \(forced\))?/#

  @Test("GOALLOC_DEBUG=gctrace=1: one line per collection in Go's format, numbered from 1, (forced) for explicit ones")
  func gctrace() async throws {
    let r = try await Self.run("reach", environment: ["GOALLOC_DEBUG": "gctrace=1"])
    expectScenarioOK(r, atLeast: 18)
    let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("gc ") }
    #expect(lines.count >= 12, "\(r)")
    var expected = 1
    for line in lines {
      let m = try #require(try Self.gctraceLine.wholeMatch(in: String(line)), "\(line)")
      #expect(Int(m.output.1) == expected, "\(line)")
      expected += 1
    }
    #expect(lines.allSatisfy { $0.hasSuffix(" (forced)") }, "\(r)")
    // Collections the pacer starts are not forced.
    let paced = try await Self.run("pacing", environment: ["GOALLOC_DEBUG": "gctrace=1"])
    expectScenarioOK(paced, atLeast: 2)
    let pacedLines = paced.stderr.split(separator: "\n").filter { $0.hasPrefix("gc ") }
    #expect(pacedLines.count >= 5 && pacedLines.contains { !$0.hasSuffix("(forced)") }, "\(paced)")
    #expect(pacedLines.allSatisfy { (try? Self.gctraceLine.wholeMatch(in: String($0))) != nil }, "\(paced)")
    // Without the setting: no line.
    let quiet = try await Self.run("pacing")
    #expect(!quiet.stderr.contains("gc 1 @"), "\(quiet)")
  }

  @Test("GOALLOC_GC sets the percent; a malformed value warns and keeps 100")
  func percentFromEnvironment() async throws {
    let r = try await Self.run("percent", environment: ["GOALLOC_GC": "50"])
    #expect(r.exitedCleanly && r.stdoutLines == ["percent 50"], "\(r)")
    let off = try await Self.run("percent", environment: ["GOALLOC_GC": "off"])
    #expect(off.stdoutLines == ["percent -1"], "\(off)")
    let bad = try await Self.run("percent", environment: ["GOALLOC_GC": "lots"])
    #expect(bad.stdoutLines == ["percent 100"] && bad.stderr.contains("GOALLOC_GC must be a percent"), "\(bad)")
  }

  // Concurrent marking (GOALLOC_DEBUG=gcconc=1, MGCConcurrent.swift), checked by the checkmark
  // mode (gccheckmark=1: after every mark, a re-mark with the world stopped; any reachable
  // object the cycle left unmarked aborts the process).
  static let conc = "gcconc=1,gccheckmark=1"

  @Test("the GC scenarios with concurrent marking and checkmark (4 mark workers)")
  func concurrentScenarios() async throws {
    let env = ["GOALLOC_GC_PROCS": "4", "GOALLOC_DEBUG": Self.conc]
    try await Self.battery(env, fuzz: "10000", lazythreads: "10", torture: "20")
    expectScenarioOK(try await Self.run("graph", ["30000"], environment: env), atLeast: 4)
    expectScenarioOK(try await Self.run("memlimit", environment: env), atLeast: 3)
    expectScenarioOK(try await Self.run("resurrect", ["5"], environment: env), atLeast: 2)
    // The preclean's rounds (uffd; elsewhere a no-op), with assists paying through them.
    let pre = ["GOALLOC_GC_PROCS": "2", "GOALLOC_DEBUG": Self.conc + ",gcpreclean=1"]
    expectScenarioOK(try await Self.run("resurrect", ["5"], environment: pre), atLeast: 2)
    expectScenarioOK(try await Self.run("assist", ["2500000"], environment: pre), atLeast: 4)
  }

  @Test("deep stacks of other threads: scanned one thread at a time after the first stop (concurrent), or in the pause",
        arguments: ["gcconc=1,gccheckmark=1", "gcconc=1,gcdirty=barrier,gccheckmark=1", "gccheckmark=1"])
  func deepStacks(mode: String) async throws {
    for procs in ["1", "4"] {
      let r = try await Self.run("stacks", ["10"], environment: ["GOALLOC_GC_PROCS": procs, "GOALLOC_DEBUG": mode + ",gctrace=1"])
      expectScenarioOK(r, atLeast: 2)
      // 8 threads x 256 KiB: the stacks scanned are counted (gctrace's "N MB stacks").
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("gc ") }
      #expect(lines.last.map { $0.contains(" 2 MB stacks") || $0.contains(" 3 MB stacks") } == true, "\(r)")
    }
  }

  @Test("threads mutate linked lists without barriers while concurrent collections run: every list matches its shadow",
        arguments: ["gcconc=1,gccheckmark=1", "gcconc=1,gccheckmark=1,gcdirty=full", "gcconc=1,gccheckmark=1,gcpreclean=1",
                    "gcconc=1,gccheckmark=1,gcdirty=mprotect", "gccheckmark=1"])
  func concurrentMutators(mode: String) async throws {
    let ops = mode == "gccheckmark=1" ? "10000" : "100000"  // (stopped marks: many more cycles)
    let r = try await Self.run("mutate", ["3", ops], environment: ["GOALLOC_DEBUG": mode])
    expectScenarioOK(r, atLeast: 3)
  }

  // One mutator against a thread collecting back to back (every cycle a few ms, the mark itself
  // almost nothing): its assist waits for credit end with the cycle, and a stop ends its nap, so
  // it gets on (it could hang for minutes: its wait spanned cycles, and each stop's signal reached
  // it again before it had run).
  @Test("one mutator thread makes progress while another collects back to back", arguments: ["full", "mprotect", "auto"])
  func loneMutatorProgresses(dirty: String) async throws {
    for _ in 0..<3 {
      let r = try await Self.run("mutate", ["1", "100000"], environment: ["GOALLOC_DEBUG": "gcconc=1,gccheckmark=1,gcdirty=" + dirty],
                                 timeout: 60)
      expectScenarioOK(r, atLeast: 3)
    }
  }

  @Test("an object made reachable during the concurrent mark survives; without the dirty-page rescan checkmark catches it")
  func checkmarkCatchesMissingRescan() async throws {
    expectScenarioOK(try await Self.run("resurrect", environment: ["GOALLOC_DEBUG": "gcconc=1"]), atLeast: 2)
    // gcconcbroken=1: mark termination skips the dirty-page rescan (tests only).
    let broken = try await Self.run("resurrect", environment: ["GOALLOC_DEBUG": "gcconc=1,gcconcbroken=1"])
    #expect(broken.stdout.contains("FAIL resurrect: an object stored into a scanned object"), "\(broken)")
    let caught = try await Self.run("resurrect", environment: ["GOALLOC_DEBUG": "gcconc=1,gcconcbroken=1,gccheckmark=1"])
    #expect(!caught.exitedCleanly && caught.stderr.contains("goalloc: gc: checkmark: ")
            && caught.stderr.contains("reachable object(s) left unmarked by the mark"), "\(caught)")
    let mutators = try await Self.run("mutate", ["3", "100000"], environment: ["GOALLOC_DEBUG": "gcconc=1,gcconcbroken=1,gccheckmark=1"])
    #expect(!mutators.exitedCleanly && mutators.stderr.contains("goalloc: gc: checkmark: "), "\(mutators)")
  }

  // gcdirty=mprotect (dirty.c): the collected scan spans' pages read-only for the period, a
  // SIGSEGV handler recording the first write to each.
  @Test("gcdirty=mprotect: mutators and a resurrected object under checkmark; without the rescan checkmark catches it")
  func mprotectTracking() async throws {
    let env = ["GOALLOC_GC_PROCS": "2", "GOALLOC_DEBUG": "gcconc=1,gcdirty=mprotect,gccheckmark=1,gctrace=1"]
    let r = try await Self.run("mutate", ["3", "100000"], environment: env)
    expectScenarioOK(r, atLeast: 3)
    #expect(r.stdout.contains("gc_conc 5,"), "\(r)")
    let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("gc ") }
    #expect(!lines.isEmpty && lines.allSatisfy { $0.contains(", conc mprotect ") }, "\(r)")
    expectScenarioOK(try await Self.run("resurrect", ["5"], environment: env), atLeast: 2)
    expectScenarioOK(try await Self.run("fork", environment: env), atLeast: 1)
    let secure = try await Self.run("torture", ["20"], environment: env.merging(["GOALLOC_SECURE": "1"]) { $1 })
    expectScenarioOK(secure, atLeast: 4)
    let caught = try await Self.run("resurrect", ["5"], environment: ["GOALLOC_DEBUG": "gcconc=1,gcdirty=mprotect,gcconcbroken=1,gccheckmark=1"])
    #expect(!caught.exitedCleanly && caught.stderr.contains("reachable object(s) left unmarked by the mark"), "\(caught)")
  }

  @Test("gcdirty=auto with userfaultfd refused (seccomp) falls back: soft-dirty where the kernel has it, else mprotect")
  func autoWithoutUffd() async throws {
    let r = try await Self.run("nouffd", ["mutate", "3", "100000"], environment: ["GOALLOC_DEBUG": "gcconc=1,gccheckmark=1,gctrace=1"])
    expectScenarioOK(r, atLeast: 3)
    #expect(r.stdout.contains("gc_conc 5,") || r.stdout.contains("gc_conc 2,"), "\(r)")
    let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("gc ") }
    #expect(!lines.isEmpty && lines.allSatisfy { $0.contains(", conc mprotect ") || $0.contains(", conc softdirty ") }, "\(r)")
  }

  @Test("gcdirty=mprotect: read(2) into a protected scan object fails with EFAULT, not into noscan or malloc memory; other faults still crash")
  func mprotectSyscallsAndFaults() async throws {
    let env = ["GOALLOC_DEBUG": "gcconc=1,gcdirty=mprotect,gccheckmark=1"]
    expectScenarioOK(try await Self.run("syscalls", environment: env), atLeast: 5)
    expectScenarioOK(try await Self.run("syscalls", environment: ["GOALLOC_DEBUG": "gcconc=1,gccheckmark=1"]), atLeast: 5)
    // A write to read-only memory outside the heap, and (secure mode) to a guard page, during the
    // period: the handler forwards them, the default action kills the process.
    let crash = try await Self.run("syscalls", ["crash"], environment: env)
    #expect(crash.reason == .uncaughtSignal && crash.status == SIGSEGV, "\(crash)")
    let guarded = try await Self.run("syscalls", ["guard"], environment: env.merging(["GOALLOC_SECURE": "1"]) { $1 })
    #expect(guarded.reason == .uncaughtSignal && guarded.status == SIGSEGV, "\(guarded)")
  }

  // The explicit write barrier (goalloc_gc_write_barrier, MGCBarrier.swift) under
  // gcdirty=barrier: no page is tracked; the program stores every pointer into collected memory
  // through the barrier, and stop 2 rescans only the roots without barriers.
  // (`store`: through goalloc.h's goalloc_gc_store, the flag tested inline.)
  @Test("threads mutate linked lists only through the write barrier under gcdirty=barrier: every list matches its shadow",
        arguments: [("1", "barrier"), ("4", "barrier"), ("2", "store")])
  func barrierMutators(procs: String, how: String) async throws {
    let env = ["GOALLOC_GC_PROCS": procs, "GOALLOC_DEBUG": "gcconc=1,gcdirty=barrier,gccheckmark=1,gctrace=1"]
    let r = try await Self.run("mutate", ["3", "300000", how], environment: env)
    expectScenarioOK(r, atLeast: 3)
    #expect(r.stdout.contains("gc_conc 4,"), "\(r)")
    let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("gc ") }
    #expect(!lines.isEmpty && lines.allSatisfy { $0.contains(", conc barrier 0 pages") }, "\(r)")
    // A pointer the program hid during the mark, stored into a scanned object through the barrier.
    expectScenarioOK(try await Self.run("resurrect", ["5", "barrier"], environment: env), atLeast: 2)
  }

  @Test("gcdirty=barrier: a store that bypasses the barrier loses a reachable object, and checkmark catches it")
  func checkmarkCatchesMissingBarrier() async throws {
    let plain = try await Self.run("resurrect", ["5"], environment: ["GOALLOC_DEBUG": "gcconc=1,gcdirty=barrier"])
    #expect(plain.stdout.contains("FAIL resurrect: an object stored into a scanned object"), "\(plain)")
    let caught = try await Self.run("resurrect", ["5"], environment: ["GOALLOC_DEBUG": "gcconc=1,gcdirty=barrier,gccheckmark=1"])
    #expect(!caught.exitedCleanly && caught.stderr.contains("goalloc: gc: checkmark: ")
            && caught.stderr.contains("reachable object(s) left unmarked by the mark"), "\(caught)")
    // The same mutation as barrierMutators with a move's two stores bypassing the barrier.
    let mutators = try await Self.run("mutate", ["3", "300000", "barrier-but-moves"],
                                      environment: ["GOALLOC_DEBUG": "gcconc=1,gcdirty=barrier,gccheckmark=1"])
    #expect(!mutators.exitedCleanly && mutators.stderr.contains("goalloc: gc: checkmark: ")
            && mutators.stderr.contains("reachable object(s) left unmarked by the mark"), "\(mutators)")
  }

  @Test("gctrace with concurrent marking: three clock phases (stop, concurrent mark, stop) and the dirty-page mechanism")
  func concurrentTrace() async throws {
    let r = try await Self.run("pacing", environment: ["GOALLOC_DEBUG": "gcconc=1,gctrace=1"])
    expectScenarioOK(r, atLeast: 2)
    let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("gc ") }
    #expect(lines.count >= 5, "\(r)")
    let conc = #/gc \d+ @\d+\.\d{3}s \d+%: [0-9.]+\+[0-9.]+\+[0-9.]+ ms clock, [0-9.]+\+[0-9.]+/[0-9.]+/[0-9.]+\+[0-9.]+ ms cpu, .* \d+ P, conc (uffd|softdirty|mprotect|full) \d+ pages( \(forced\))?/#
    #expect(lines.allSatisfy { (try? conc.wholeMatch(in: String($0))) != nil }, "\(r)")
  }
}
