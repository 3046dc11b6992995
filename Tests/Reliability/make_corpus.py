#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_ops.c into Tests/Reliability/corpus/ (deterministic).

Each seed is a scenario encoded the way fuzz_ops.c decodes its input: an opcode byte (op % 24
picks the operation, the high bits pick variants), a slot byte, then the operation's parameters.
The seeds are starting points; libFuzzer mutates them, so an exact decode is not required.
Usage: make_corpus.py [OUTDIR]
"""
import os
import random
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# opcodes (op % 24)
MALLOC, CALLOC, REALLOC, FREE, FREE_NULL, ALIGNED, USABLE, CHECK, RELEASE = 0, 4, 5, 8, 11, 12, 14, 15, 16
H_MALLOC, H_FREE, H_CHURN, REALLOCARRAY, BURST, FORK_OR_BURST, BAD = 17, 18, 19, 20, 21, 22, 23

CLASS_SIZES = [8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288,
               320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408,
               1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784,
               6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480,
               21760, 24576, 27264, 28672, 32768]


def size_bytes(kind, v, hi=0):
    """pick_size(): selector byte (low 4 bits = kind, high bits = variant), then a 16-bit value."""
    return [(kind & 15) | (hi << 4) & 0xF0, v & 0xFF, (v >> 8) & 0xFF]


def small(v):
    return size_bytes(1, v)


def medium(v):
    return size_bytes(6, v)


def boundary(i, delta):  # class boundary i, delta in {-1, 0, +1} -> hi = delta + 1
    return size_bytes(9, i, delta + 1)


def large(v):
    return size_bytes(12, v)


def pages(n, delta=0):
    return size_bytes(13, n, delta + 1)


def huge(mib):  # 1..4 MiB when hi has 0x3 in bits 4..5
    return size_bytes(14, mib - 1, 3)


class Seed:
    def __init__(self, rng):
        self.b = []
        self.rng = rng

    def op(self, code, slot, *params, flags=0):
        # the smallest byte b with b % 24 == code and (b & flags) == flags
        b = next(b for b in range(code, 256, 24) if b & flags == flags)
        self.b.append(b)
        self.b.append(slot & 0xFF)
        for p in params:
            self.b.extend(p if isinstance(p, list) else [p])
        return self

    def data(self):
        return bytes(self.b)


def scenarios():
    out = {}

    def seed(name, build, n=3):
        for k in range(n):
            rng = random.Random(f"{name}-{k}")
            s = Seed(rng)
            build(s, rng, k)
            out[f"{name}-{k}"] = s.data()

    def small_churn(s, rng, k):
        for i in range(40):
            s.op(MALLOC, i, boundary(rng.randrange(len(CLASS_SIZES)), rng.choice([-1, 0, 1])))
        for i in range(0, 40, 1 + k):
            s.op(FREE, i)
        s.op(CHECK, 0)
        for i in range(40):
            s.op(MALLOC, i, small(rng.randrange(129)))
    seed("small-churn", small_churn)

    def realloc_grow(s, rng, k):
        s.op(MALLOC, 1, small(1 + k))
        for _ in range(24):
            s.op(REALLOC, 1, 0)  # how 0: size * 2 + 1
        for _ in range(10):
            s.op(REALLOC, 1, 1)  # how 1: size / 2
        s.op(USABLE, 1)
    seed("realloc-grow-shrink", realloc_grow)

    def realloc_edges(s, rng, k):
        for i in range(8):
            s.op(MALLOC, i, boundary(rng.randrange(len(CLASS_SIZES)), 0))
            s.op(REALLOC, i, 4)  # to usable: in place
            s.op(REALLOC, i, 5)  # usable + 1: moves
            s.op(REALLOC, i, 3)
            s.op(REALLOC, i, 6, large(rng.randrange(60000)))
            s.op(REALLOC, i, 7, small(rng.randrange(100)))
        s.op(REALLOC, 9, 9, small(0))  # realloc(NULL, n)
        s.op(REALLOC, 9, 9)  # how 9 with size 0 path when small
    seed("realloc-edges", realloc_edges)

    def calloc_reuse(s, rng, k):
        for i in range(30):
            s.op(MALLOC, i, medium(rng.randrange(8192)))
        for i in range(30):
            s.op(FREE, i)
        for i in range(30):
            s.op(CALLOC, i, rng.randrange(16), medium(rng.randrange(8192)))
        s.op(CALLOC, 31, 248, small(5))
        s.op(CALLOC, 32, 249, small(5))
    seed("calloc-reuse", calloc_reuse)

    def aligned(s, rng, k):
        for i in range(48):
            s.op(ALIGNED, i, rng.randrange(5), rng.randrange(22), rng.choice([small, medium, large])(rng.randrange(30000)))
        for bad in range(250, 256):
            s.op(ALIGNED, 60, rng.randrange(5), bad, small(10))
        s.op(CHECK, 0)
    seed("aligned", aligned)

    def overflow(s, rng, k):
        s.op(MALLOC, 2, small(50))
        s.op(REALLOC, 2, 250)
        s.op(REALLOC, 2, 251)
        s.op(REALLOCARRAY, 2, 1)
        s.op(REALLOCARRAY, 2, 2, small(300))
        s.op(CALLOC, 3, 248, small(1))
        s.op(CALLOC, 3, 249, small(1))
        s.op(ALIGNED, 4, 0, 255, small(1))
        s.op(USABLE, 2)
    seed("overflow", overflow)

    def cross_thread(s, rng, k):
        for i in range(24):
            s.op(H_MALLOC, i, rng.choice([small, medium])(rng.randrange(4000)))
        for i in range(0, 24, 2):
            s.op(FREE, i)  # remote frees of the helper's objects
        for i in range(24, 48):
            s.op(MALLOC, i, small(rng.randrange(128)))
        for i in range(24, 48, 2):
            s.op(H_FREE, i)  # the helper frees main's objects
        s.op(H_CHURN, 0, [rng.randrange(256), rng.randrange(256), rng.randrange(256)])
        s.op(H_CHURN, 0, flags=0x80)  # op | 0x80: helper exits with live objects
        s.op(CHECK, 0)
        for i in range(1, 24, 2):
            s.op(FREE, i)
    seed("cross-thread", cross_thread)

    def fork(s, rng, k):
        for i in range(20):
            s.op(MALLOC, i, rng.choice([small, medium, large])(rng.randrange(20000)))
        s.op(H_MALLOC, 30, small(40))
        s.op(FORK_OR_BURST, 0, flags=0xC0)  # op & 0xC0 == 0xC0: fork
        for i in range(0, 20, 3):
            s.op(FREE, i)
        s.op(FORK_OR_BURST, 0, flags=0xC0)
    seed("fork", fork, n=2)

    def release(s, rng, k):
        for i in range(40):
            s.op(MALLOC, i, rng.choice([medium, large, pages])(rng.randrange(64)))
        for i in range(40):
            s.op(FREE, i)
        s.op(RELEASE, 0, flags=0x80)  # goalloc_release_free_memory
        for i in range(20):
            s.op(MALLOC, i, medium(rng.randrange(8192)))
        s.op(RELEASE, 0)  # malloc_trim
    seed("release", release)

    def bursts(s, rng, k):
        for i in range(12):
            s.op(BURST, 0, rng.randrange(256), small(rng.randrange(129)))
            s.op(FORK_OR_BURST, 0, rng.randrange(256), medium(rng.randrange(2048)))
    seed("burst", bursts)

    def bad(s, rng, k):
        for i in range(8):
            s.op(MALLOC, i, rng.choice([small, medium, large])(rng.randrange(40000)))
        for j in range(12):
            s.op(BAD, 0, rng.randrange(256), rng.randrange(8), small(rng.randrange(100)))
        s.op(CHECK, 0)
    seed("bad-input", bad)

    def large_pages(s, rng, k):
        for i in range(16):
            s.op(MALLOC, i, pages(rng.randrange(64), rng.choice([-1, 0, 1])))
        s.op(MALLOC, 20, huge(1 + k))
        for i in range(0, 16, 2):
            s.op(REALLOC, i, 0)
        s.op(CHECK, 0)
    seed("large-pages", large_pages)

    def mixed(s, rng, k):
        for _ in range(160):
            s.b.append(rng.randrange(256))
            s.b.append(rng.randrange(128))
            s.b.extend(rng.randrange(256) for _ in range(rng.randrange(6)))
    seed("mixed", mixed, n=4)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = scenarios()
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"make_corpus: {len(seeds)} seeds in {OUT}")


if __name__ == "__main__":
    main()
