#!/usr/bin/env python3
"""A real workload for the demo: dicts, lists, strings, JSON and threads (deterministic output)."""
import json, threading, hashlib

def work(seed):
    table = {}
    for i in range(60000):
        key = f"k{(i * 7919 + seed) % 50000}"
        table.setdefault(key, []).append("x" * (i % 97))
        if i % 5 == 0:
            table.pop(f"k{(i * 31) % 50000}", None)
    blob = json.dumps(table, sort_keys=True)
    back = json.loads(blob)
    words = sorted(back, key=lambda k: (len(back[k]), k))
    return hashlib.sha256(("|".join(words[:1000]) + blob[:10000]).encode()).hexdigest()

results = [None] * 4
def run(i): results[i] = work(i)
threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("workload checksum", hashlib.sha256("".join(results).encode()).hexdigest()[:16])
