// gcwork: the GC workloads of `goalloc bench gc` (Benchmarks/gc/binarytrees.c, gcbench.c,
// gc17.c, gcbig.c) in Go, on Go's own allocator and collector (default GOGC), for the bench's
// `go` rows.
// Each prints the C program's result line (the same numbers) and its gcstats line: the number
// of collections and the stop-the-world pauses Go's runtime records (MemStats.PauseNs, the
// last 256: their max and 99th percentile; Go marks concurrently, so its pauses are only the
// phase changes).
//
// Usage: gcwork binarytrees [N] | gcwork gcbench [MAX_DEPTH] | gcwork gc17 [N] [K] | gcwork gcbig [MIB] [CHURN]
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
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

// gcbig's nodes: 32 B, or 48 or 64 B with a tail; a chain links their embedded headers.
type bigNode struct {
	next, other *bigNode
	chain, pos  uint32
	tag         uint64
}
type bigNode48 struct {
	bigNode
	tail [2]uint64
}
type bigNode64 struct {
	bigNode
	tail [4]uint64
}

// gcstats.h's xorshift64*, so the chains are the C program's.
var rngState uint64 = 0x9E3779B97F4A7C15

func rnd() uint64 {
	x := rngState
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	rngState = x
	return x * 0x2545F4914F6CDD1D
}

const bigChain = 32

func bigTag(chain, pos int64) uint64 { return uint64(chain)*0x9E3779B1 + uint64(pos) }

func bigBuild(chain int64) *bigNode {
	var built [bigChain]*bigNode
	var next *bigNode
	for i := int64(bigChain - 1); i >= 0; i-- {
		var n *bigNode
		switch rnd() % 3 {
		case 0:
			n = &bigNode{}
		case 1:
			n = &(&bigNode48{}).bigNode
		default:
			n = &(&bigNode64{}).bigNode
		}
		n.next, n.chain, n.pos, n.tag = next, uint32(chain), uint32(i), bigTag(chain, i)
		built[i] = n
		next = n
	}
	for i := 0; i < bigChain; i++ {
		built[i].other = built[rnd()%uint64(i+1)]
	}
	return built[0]
}

func bigVerify(head *bigNode, chain int64) uint64 {
	var sum uint64
	pos := int64(0)
	for n := head; n != nil; n = n.next {
		if n.chain != uint32(chain) || n.pos != uint32(pos) || n.tag != bigTag(chain, pos) ||
			n.other.chain != uint32(chain) || n.other.pos > n.pos {
			fmt.Fprintf(os.Stderr, "chain %d: node %d is corrupt\n", chain, pos)
			os.Exit(3)
		}
		sum += n.tag
		pos++
	}
	if pos != bigChain {
		fmt.Fprintf(os.Stderr, "chain %d: %d nodes\n", chain, pos)
		os.Exit(3)
	}
	return sum
}

// gcbig: Benchmarks/gc/gcbig.c's large live heap of chains, churned.
func gcbig(mib, churn int64) {
	chains := (mib << 20) / (48 * bigChain)
	if chains < 1 {
		chains = 1
	}
	heads := make([]*bigNode, chains)
	for c := int64(0); c < chains; c++ {
		heads[c] = bigBuild(c)
	}
	steps := chains * churn / 100
	var sum uint64
	for s := int64(0); s < steps; s++ {
		c := int64(rnd() % uint64(chains))
		sum += bigVerify(heads[c], c)
		heads[c] = bigBuild(c)
	}
	for c := int64(0); c < chains; c++ {
		sum += bigVerify(heads[c], c)
	}
	fmt.Printf("gcbig: mib=%d chains=%d nodes=%d replaced=%d sum=%d\n", mib, chains, chains*bigChain, steps, sum)
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
		fmt.Fprintln(os.Stderr, "usage: gcwork binarytrees|gcbench|gc17|gcbig [args]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "binarytrees":
		binarytrees(int(arg(2, 18)))
	case "gcbench":
		gcbench(int(arg(2, 18)))
	case "gc17":
		gc17(arg(2, 50000000), arg(3, 10000))
	case "gcbig":
		gcbig(arg(2, 1228), arg(3, 200))
	default:
		fmt.Fprintln(os.Stderr, "unknown workload", os.Args[1])
		os.Exit(2)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	recent := m.PauseNs[:]
	if m.NumGC < uint32(len(recent)) {
		recent = recent[:m.NumGC]
	}
	sorted := append([]uint64(nil), recent...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var maxPause, p99 uint64
	if n := len(sorted); n > 0 {
		maxPause = sorted[n-1]
		p99 = sorted[(n*99+99)/100-1] // nearest rank
	}
	fmt.Printf("gcstats: collections=%d pause_max_ns=%d pause_total_ns=%d pause_p99_ns=%d incremental=0\n",
		m.NumGC, maxPause, m.PauseTotalNs, p99)
}
