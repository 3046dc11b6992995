// SpinLock: a futex lock on one 32-bit word, for the mcentral and mheap tiers only.
//
// States: 0 unlocked, 1 locked, 2 locked with (possible) waiters. `lock` is one CAS when free;
// contended callers spin briefly, then sleep in the kernel on the word. `unlock` wakes one
// sleeper only when the word said 2. The word lives inside an mmap'd structure; a zeroed word
// is an unlocked lock, and `reset` (after fork, in the child) makes it so again.
// The mcache fast path never takes one of these.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

@usableFromInline typealias LockWord = UInt32

@inline(__always) @usableFromInline
func lockAcquire(_ l: UnsafeMutablePointer<LockWord>) {
  if _fastPath(atomicCAS32(l, 0, 1)) { return }
  lockAcquireSlow(l)
}

@inline(never) @usableFromInline
func lockAcquireSlow(_ l: UnsafeMutablePointer<LockWord>) {
  // Critical sections here are short (a list push, a page-bitmap update): spin a while, with
  // the CPU's pause hint, before paying for a futex sleep and wake-up.
  var spins = 0
  while spins < 2000 {
    if atomicLoad32(l) == 0 && atomicCAS32(l, 0, 1) { return }
    goalloc_cpu_relax()
    spins += 1
  }
  while atomicExchange32(l, 2, acquire: true) != 0 {
    goalloc_futex_wait(l, 2)
  }
}

@inline(__always) @usableFromInline
func lockRelease(_ l: UnsafeMutablePointer<LockWord>) {
  if _slowPath(atomicExchange32(l, 0, acquire: false) == 2) {
    goalloc_futex_wake(l, 1)
  }
}

/// In a fork child: the lock was held by the parent's prepare handler; make it free.
@inline(__always) @usableFromInline
func lockReset(_ l: UnsafeMutablePointer<LockWord>) { atomicStore32(l, 0) }
