# CPython churning small objects, for `goalloc bench`'s python row (run with PYTHONMALLOC=malloc,
# so every object comes from malloc): ROUNDS rounds of building and dropping dicts of records,
# lists of tuples, strings (formatted, joined, split, sliced), sets and a small LRU-style cache.
# CPU-bound, no I/O; the checksum is the same under every allocator.
# Usage: python3 pyalloc.py [rounds]. Prints one line: pyalloc: ops=ROUNDS ... checksum=N.
import sys


def records(n, seed):
    """A dict of n small records (dicts with a string, an int, a list)."""
    out = {}
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out["user%05d" % (x % 50000)] = {"id": i, "name": "n" + str(x % 997), "tags": [x & 7, x & 15, i]}
    return out


def strings(n, seed):
    """Formats, joins, splits and slices strings; returns a number from them."""
    parts = ["%d:%s" % (i, "ab" * ((i + seed) % 9)) for i in range(n)]
    text = ",".join(parts)
    total = 0
    for piece in text.split(","):
        key, _, value = piece.partition(":")
        total += len(value) + int(key) % 7
    words = [p[1:] + p[:1] for p in parts[: n // 2]]
    return total + len(" ".join(sorted(words)))


def lists(n, seed):
    """Lists of tuples, sorted and filtered; a set built from them."""
    rows = [((i * 7919 + seed) % 1000, str(i), i * 0.5) for i in range(n)]
    rows.sort()
    kept = [r for r in rows if r[0] % 3 != 0]
    seen = {r[1] for r in kept}
    return len(kept) + len(seen) + sum(r[0] for r in kept[:100])


def cache(n, seed):
    """A bounded cache: insert, look up, and evict the oldest half when full."""
    c = {}
    hits = 0
    for i in range(n):
        k = (i * 31 + seed) % 3000
        if k in c:
            hits += 1
            c[k][1] += 1
        else:
            c[k] = [str(k) * 3, 0]
            if len(c) > 1000:
                for old in list(c)[:500]:
                    del c[old]
    return hits


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    checksum = 0
    for r in range(rounds):
        d = records(4000, r)
        checksum += len(d) + sum(v["tags"][0] for v in d.values())
        checksum += strings(4000, r)
        checksum += lists(4000, r)
        checksum += cache(8000, r)
        checksum &= 0xFFFFFFFF
    print("pyalloc: ops=%d rounds of dicts, strings, lists and a cache; checksum=%d" % (rounds, checksum))


main()
