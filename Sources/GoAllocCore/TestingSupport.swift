// TestingSupport: hooks for the package's own tests (`package` access: not part of any
// product's API). See Malloc.swift for an overview of the allocator.
import CGoAllocShim

nonisolated(unsafe) var exclusiveTestLock: LockWord = 0

/// Runs `body` while no other caller of this function runs: tests that compare global counters
/// (in any test target of the process) serialize through it.
package func _withExclusiveGlobalHeapForTesting<T>(_ body: () -> T) -> T {
  lockAcquire(&exclusiveTestLock)
  defer { lockRelease(&exclusiveTestLock) }
  return body()
}
