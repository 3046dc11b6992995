// Pools through the C API (goalloc_pool_*): Fixtures/pool.c, linked with libgoalloc.so and run
// under it, one scenario per process. GOALLOC_DEBUG=scavenger=0: no rotation but the
// scenario's own (collections, malloc_trim), so its counts are exact.
import Foundation
import Testing

@Suite("Pools: the C API")
struct PoolCTests {
  static func run(_ scenario: String, timeout: Double = 120) async throws -> ProcessResult {
    let exe = try await FixtureBuilder.shared.linkedToLibrary("pool")
    return try await Subprocess.run(exe.path, [scenario], preload: .goalloc,
                                    environment: ["GOALLOC_DEBUG": "scavenger=0"], timeout: timeout)
  }

  @Test("get, put, init, stats, NULL arguments, destroy (twice: one line)")
  func basic() async throws {
    let r = try await Self.run("basic")
    expectScenarioOK(r, atLeast: 16)
    #expect(r.stderrLines == ["goalloc: goalloc_pool_destroy: not a live pool (destroyed already?); ignored"], "\(r)")
  }

  @Test("8 threads get, put and hand objects across: none lost, none handed to two callers")
  func threads() async throws { expectScenarioOK(try await Self.run("threads"), atLeast: 4) }

  @Test("the same while 40 collections rotate the pool: every object is pooled or was freed once")
  func threadsWithCollections() async throws { expectScenarioOK(try await Self.run("threads-gc"), atLeast: 4) }

  @Test("the same while 200 malloc_trims take the threads' private objects (membarrier protocol)")
  func threadsWithTrims() async throws { expectScenarioOK(try await Self.run("threads-trim"), atLeast: 4) }

  @Test("victim rule over collections: moved aside by one, freed by the next")
  func victim() async throws { expectScenarioOK(try await Self.run("victim"), atLeast: 4) }

  @Test("malloc_trim and goalloc_release_free_memory free what pools hold")
  func trim() async throws { expectScenarioOK(try await Self.run("trim"), atLeast: 3) }

  @Test("objects put by threads that exited are found (slots are reused)")
  func exitingThreads() async throws { expectScenarioOK(try await Self.run("exit"), atLeast: 1) }

  @Test("fork while threads use a pool")
  func fork() async throws { expectScenarioOK(try await Self.run("fork"), atLeast: 1) }
}
