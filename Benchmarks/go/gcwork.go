// gcwork: the GC workloads of `goalloc bench gc` (Benchmarks/gc/binarytrees.c, gcbench.c,
// gc17.c) in Go, on Go's own allocator and collector (default GOGC), for the bench's `go` rows.
// Each prints the C program's result line (the same numbers) and its gcstats line: the number
// of collections and the stop-the-world pauses Go's runtime records (MemStats.PauseNs, the
// last 256; Go marks concurrently, so its pauses are only the phase changes).
//
// Usage: gcwork binarytrees [N] | gcwork gcbench [MAX_DEPTH] | gcwork gc17 [N] [K]
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
)

type tree struct{ l, r *tree }

func makeTree(d int) *tree {
	t := &tree{}
	if d > 0 {
		t.l = makeTree(d - 1)
		t.r = makeTree(d - 1)
	}
	return t
}

func (t *tree) check() int64 {
	if t.l == nil {
		return 1
	}
	return 1 + t.l.check() + t.r.check()
}

func binarytrees(n int) {
	sum := makeTree(n + 1).check()
	longLived := makeTree(n)
	for d := 4; d <= n; d += 2 {
		iters := int64(1) << uint(n-d+4)
		for i := int64(0); i < iters; i++ {
			sum += makeTree(d).check()
		}
	}
	sum += longLived.check()
	fmt.Printf("binarytrees: depth=%d check=%d\n", n, sum)
}

type node struct {
	left, right *node
	i, j        int64
}

func nodes(depth int) int64 { return (int64(1) << uint(depth+1)) - 1 }

func populate(depth int, n *node) {
	if depth <= 0 {
		return
	}
	n.left = &node{}
	n.right = &node{}
	populate(depth-1, n.left)
	populate(depth-1, n.right)
}

func makeNode(depth int) *node {
	if depth <= 0 {
		return &node{}
	}
	return &node{left: makeNode(depth - 1), right: makeNode(depth - 1)}
}

func walk(n *node) int64 {
	if n == nil {
		return 0
	}
	return 1 + walk(n.left) + walk(n.right)
}

func gcbench(maxDepth int) {
	longLived, stretch, minDepth := maxDepth-2, maxDepth+1, 4
	total := walk(makeNode(stretch))
	keep := &node{}
	populate(longLived, keep)
	n := int64(1) << uint(maxDepth+1)
	array := make([]float64, n)
	for i := int64(0); i < n/2; i++ {
		array[i] = 1.0 / float64(i+1)
	}
	for d := minDepth; d <= maxDepth; d += 2 {
		iters := 2 * nodes(maxDepth) / nodes(d)
		for i := int64(0); i < iters; i++ {
			a := &node{}
			populate(d, a)
			total += walk(a)
			total += walk(makeNode(d))
		}
	}
	if walk(keep) != nodes(longLived) || array[1000] != 1.0/1001.0 {
		fmt.Fprintln(os.Stderr, "long-lived data lost")
		os.Exit(3)
	}
	fmt.Printf("gcbench: depth=%d nodes=%d\n", maxDepth, total)
}

type obj17 struct{ b [17]byte }

var ring [1 << 16]*obj17

func gc17(n, k int64) {
	if k < 1 || k > 1<<16 {
		k = 10000
	}
	var sum uint64
	for i := int64(0); i < n; i++ {
		p := new(obj17)
		p.b[0] = byte(i)
		p.b[16] = byte(i >> 8)
		slot := i % k
		if old := ring[slot]; old != nil {
			sum += uint64(old.b[0]) + uint64(old.b[16])
		}
		ring[slot] = p
	}
	fmt.Printf("gc17: objects=%d kept=%d check=%d\n", n, k, sum)
}

func arg(i int, dflt int64) int64 {
	if len(os.Args) > i {
		if v, err := strconv.ParseInt(os.Args[i], 10, 64); err == nil {
			return v
		}
	}
	return dflt
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gcwork binarytrees|gcbench|gc17 [args]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "binarytrees":
		binarytrees(int(arg(2, 18)))
	case "gcbench":
		gcbench(int(arg(2, 18)))
	case "gc17":
		gc17(arg(2, 50000000), arg(3, 10000))
	default:
		fmt.Fprintln(os.Stderr, "unknown workload", os.Args[1])
		os.Exit(2)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var maxPause uint64
	for _, p := range m.PauseNs {
		if p > maxPause {
			maxPause = p
		}
	}
	fmt.Printf("gcstats: collections=%d pause_max_ns=%d pause_total_ns=%d\n", m.NumGC, maxPause, m.PauseTotalNs)
}
