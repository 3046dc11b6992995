// Finalizers, cleanups and weak pointers through the C API: Fixtures/gcspecials.c, linked with
// libgoalloc.so (and run under it), one scenario per process. The fixture waits for cleanups by
// polling goalloc_gc_cleanups_pending after explicit collections (bounded), never by timing.
import Foundation
import Testing

@Suite("GC mode: finalizers, cleanups, weak pointers")
struct GCSpecialsTests {
  static func run(_ scenario: String, _ extra: [String] = [], environment: [String: String] = [:],
                  timeout: Double = 180) async throws -> ProcessResult {
    let exe = try await FixtureBuilder.shared.linkedToLibrary("gcspecials")
    return try await Subprocess.run(exe.path, [scenario] + extra, preload: .goalloc, environment: environment,
                                    timeout: timeout)
  }

  @Test("cleanups: never while reachable, once each after, on one dedicated thread; cancel; refusals; large objects; explicit frees drop them")
  func cleanups() async throws {
    let r = try await Self.run("cleanup")
    expectScenarioOK(r, atLeast: 13)
    #expect(r.stderr.contains("goalloc: gc: add_cleanup: arg points into the object"), "\(r)")
    #expect(r.stderr.contains("goalloc: gc: add_cleanup: not a pointer into a live collected object"), "\(r)")
  }

  @Test("finalizers: resurrect the object and its referents for one call, run before its cleanups, clear weak pointers first; one per object")
  func finalizers() async throws {
    let r = try await Self.run("finalizer")
    expectScenarioOK(r, atLeast: 8)
    #expect(r.stderr.contains("goalloc: gc: set_finalizer: the object already has a finalizer"), "\(r)")
  }

  @Test("finalizer order: a chain is finalized head first, one link per cycle; a self-reaching object never")
  func chains() async throws { expectScenarioOK(try await Self.run("chain"), atLeast: 2) }

  @Test("weak pointers: equal for one pointer, kept handle, cleared exactly when the object dies or is freed")
  func weakPointers() async throws { expectScenarioOK(try await Self.run("weak"), atLeast: 9) }

  /// The acceptance fuzzer: random graphs (cycles, noscan leaves, finalizable objects,
  /// explicit frees) mutated between collections; after each, nothing reachable was cleaned up,
  /// finalized or cleared, nothing ran twice, and weak pointers match the deaths. Two seeds at
  /// GOGC 100, one at GOGC 5 (collections in the middle of mutations).
  @Test("fuzz: random graphs with cleanups, finalizers and weak pointers", arguments: [("11", "100"), ("12", "100"), ("13", "5")])
  func fuzz(seed: String, gogc: String) async throws {
    let r = try await Self.run("fuzz", [seed, "150"], environment: ["GOALLOC_GC": gogc])
    expectScenarioOK(r, atLeast: 3)
  }

  @Test("README's weak-keyed cache: hits for live keys, entries die with their keys, dead slots are reused")
  func weakKeyedCache() async throws { expectScenarioOK(try await Self.run("cache"), atLeast: 3) }

  @Test("threads add and cancel cleanups and make weak pointers while collecting")
  func threads() async throws { expectScenarioOK(try await Self.run("threads"), atLeast: 3) }

  @Test("GOALLOC_DEBUG=cleanupcheck=1 reports, once, an object kept alive only by a cleanup's argument")
  func cleanupCheck() async throws {
    let r = try await Self.run("cleanupcheck", environment: ["GOALLOC_DEBUG": "cleanupcheck=1"])
    expectScenarioOK(r, atLeast: 1)
    let lines = r.stderr.split(separator: "\n").filter { $0.contains("cleanupcheck") }
    #expect(lines.count == 1 && lines[0].hasPrefix("goalloc: gc: cleanupcheck(): an object with a cleanup is reachable only from cleanup arguments"),
            "\(r)")
    let off = try await Self.run("cleanupcheck")
    #expect(!off.stderr.contains("cleanupcheck"), "\(off)")
  }

  @Test("fork: the child starts a cleanup thread of its own")
  func forkChild() async throws { expectScenarioOK(try await Self.run("fork"), atLeast: 2) }
}
