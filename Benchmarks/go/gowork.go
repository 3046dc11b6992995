// gowork: Go's own allocator (and its garbage collector, default GOGC) on the GoAlloc workloads
// that a Go program can mirror. There is no free in Go: a block is dropped and the collector
// reclaims it, so these rows compare "allocation cost plus its share of collection".
//
// Usage: gowork pair [iterations] [size]
//
//	gowork pool [iterations] [size]   sync.Pool Get + write + Put (Benchmarks/workloads/pool.c)
//
//	gowork churn [ops] [slots] [seed]
//
// The result lines have the same shape as the C workloads' (Benchmarks/workloads/pair.c, churn.c),
// and churn makes the same random choices (same generator, same seed) and checks the same tags.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

var sink []byte // keeps each block on the heap (escape analysis would otherwise put it on the stack)

// rng is xorshift64*, seeded as in Benchmarks/workloads/common.h.
type rng struct{ s uint64 }

func newRng(seed uint64) *rng {
	r := &rng{seed*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019}
	if r.s == 0 {
		r.s = 1
	}
	return r
}

func (r *rng) next() uint64 {
	x := r.s
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	r.s = x
	return x * 0x2545F4914F6CDD1D
}

func (r *rng) below(n uint64) uint64        { return (r.next() >> 11) % n }
func (r *rng) rangeIn(lo, hi uint64) uint64 { return lo + r.below(hi-lo+1) }

// size is log-uniform-ish in [lo, hi], as rng_size in common.h.
func (r *rng) size(lo, hi uint64) int {
	lb, hb := log2(lo), log2(hi)
	band := lb + int(r.below(uint64(hb-lb+1)))
	a := uint64(1) << band
	b := a*2 - 1
	if a < lo {
		a = lo
	}
	if b > hi {
		b = hi
	}
	return int(r.rangeIn(a, b))
}

func log2(x uint64) int {
	n := -1
	for x != 0 {
		x >>= 1
		n++
	}
	return n
}

func tagOf(owner, gen uint64) uint64 {
	return ((owner + 1) * 0x9E3779B97F4A7C15) ^ (gen * 0xD6E8FEB86659FD93) ^ 1
}

func tagWrite(b []byte, tag uint64) {
	if len(b) < 16 {
		for i := range b {
			b[i] = byte(tag)
		}
		return
	}
	for off := 0; off+16 <= len(b); off += 1024 {
		binary.LittleEndian.PutUint64(b[off:], tag)
	}
	binary.LittleEndian.PutUint64(b[len(b)-8:], tag)
}

func tagOK(b []byte, tag uint64) bool {
	if len(b) < 16 {
		for i := range b {
			if b[i] != byte(tag) {
				return false
			}
		}
		return true
	}
	for off := 0; off+16 <= len(b); off += 1024 {
		if binary.LittleEndian.Uint64(b[off:]) != tag {
			return false
		}
	}
	return binary.LittleEndian.Uint64(b[len(b)-8:]) == tag
}

func arg(i int, dflt int) int {
	if len(os.Args) <= i {
		return dflt
	}
	v, err := strconv.Atoi(os.Args[i])
	if err != nil || v <= 0 {
		fmt.Fprintf(os.Stderr, "bad argument %d: %s\n", i, os.Args[i])
		os.Exit(2)
	}
	return v
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "WORKLOAD FAILED: "+format+"\n", a...)
	os.Exit(3)
}

func pair() {
	n, size := arg(2, 50000000), arg(3, 64)
	for i := 0; i < 1000; i++ {
		sink = make([]byte, size)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		p := make([]byte, size)
		p[0] = byte(i)
		sink = p
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(n)
	fmt.Printf("pair: ops=%d %.2f ns per allocation of %d B (Go, garbage collected)\n", n, ns, size)
}

// pool mirrors Benchmarks/workloads/pool.c with Go's sync.Pool: each object is a *[]byte of
// size bytes (a pointer, so Put does not allocate), made by New when the pool is empty.
func pool() {
	n, size := arg(2, 50000000), arg(3, 64)
	p := sync.Pool{New: func() any { b := make([]byte, size); return &b }}
	for i := 0; i < 1000; i++ {
		b := p.Get().(*[]byte)
		p.Put(b)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		b := p.Get().(*[]byte)
		(*b)[0] = byte(i)
		p.Put(b)
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(n)
	fmt.Printf("pool: ops=%d %.2f ns per Get/Put pair of %d B (Go's sync.Pool)\n", n, ns, size)
}

func churn() {
	ops, nslots, seed := arg(2, 2000000), arg(3, 100000), arg(4, 1)
	r := newRng(uint64(seed))
	slots := make([][]byte, nslots)
	gens := make([]uint64, nslots)
	for i := range slots {
		slots[i] = make([]byte, r.size(8, 4096))
		tagWrite(slots[i], tagOf(uint64(i), 0))
	}
	start := time.Now()
	for k := 0; k < ops; k++ {
		i := int(r.below(uint64(nslots)))
		if !tagOK(slots[i], tagOf(uint64(i), gens[i])) {
			fail("churn: slot %d (%d B) corrupted before drop, op %d", i, len(slots[i]), k)
		}
		slots[i] = make([]byte, r.size(8, 4096))
		gens[i]++
		tagWrite(slots[i], tagOf(uint64(i), gens[i]))
	}
	elapsed := time.Since(start)
	live := 0
	for i := range slots {
		if !tagOK(slots[i], tagOf(uint64(i), gens[i])) {
			fail("churn: slot %d corrupted at the end", i)
		}
		live += len(slots[i])
	}
	fmt.Printf("churn: ops=%d slots=%d %.1f ns per replace, live %.1f MiB (Go, garbage collected)\n",
		ops, nslots, float64(elapsed.Nanoseconds())/float64(ops), float64(live)/1048576.0)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gowork pair|churn|pool [args...]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pair":
		pair()
	case "churn":
		churn()
	case "pool":
		pool()
	default:
		fail("unknown workload %s", os.Args[1])
	}
}
