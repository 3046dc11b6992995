"""A cache that fills, is trimmed at random, then refills with smaller entries: a fragmented heap
for `goalloc run --heapmap` (the picture in docs/heapmap.png comes from this script). Objects over
512 bytes, so CPython takes them from malloc rather than its own small-object pools."""
import random

random.seed(42)
sizes = [520, 700, 1000, 1400, 2000, 2800, 4000, 5600, 8000, 11000, 16000, 24000, 40000, 90000]
cache = {i: bytes(random.choice(sizes)) for i in range(4000)}
for k in random.sample(list(cache), 2800):
    del cache[k]
for i in range(4000, 7000):
    cache[i] = bytes(random.randint(513, 3000))
print(len(cache), sum(map(len, cache.values())))

# CPython frees module globals while it shuts down, before the heap map is drawn at exit: keep one
# reference to the cache that nothing drops, so the picture shows the cache rather than its ruins.
import ctypes
ctypes.pythonapi.Py_IncRef(ctypes.py_object(cache))
