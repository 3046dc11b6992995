# Python workload for the preload tests: dicts, lists, strings, json and 4 threads.
# Prints a deterministic checksum per part and overall (independent of hash randomization).
import hashlib
import json
import threading


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def records(n, salt):
    out = []
    for i in range(n):
        out.append({
            "id": i,
            "name": "user-%d-%s" % (i, salt),
            "tags": ["t%d" % (j * i % 97) for j in range(i % 7)],
            "score": (i * 2654435761 + len(salt)) % 1000003,
            "nested": {"a": [i, i * 2, str(i)], "b": {"c": "x" * (i % 50)}},
        })
    return out


def dict_part():
    d = {}
    for i in range(60000):
        d["key%d" % (i * 7919 % 40000)] = d.get("key%d" % (i * 7919 % 40000), 0) + i
    for k in list(d)[::3]:
        del d[k]
    return sum(d.values()), len(d)


def list_part():
    lst = [str(i) * (i % 13) for i in range(40000)]
    lst.sort(key=lambda s: (len(s), s))
    chunks = [lst[i:i + 100] for i in range(0, len(lst), 100)]
    return sum(len(c) for c in chunks), lst[-1][:20]


def string_part():
    parts = []
    for i in range(30000):
        s = ("abc%d" % i).upper().replace("B", "bb") + "-" + hex(i)
        parts.append(s[::-1])
    joined = ",".join(parts)
    return len(joined), joined.count("bb"), hashlib.md5(joined.encode()).hexdigest()[:12]


def json_part():
    data = records(5000, "json")
    text = json.dumps(data)
    back = json.loads(text)
    assert back == data
    return len(text), digest(back[:100])


def thread_part():
    results = [None] * 4

    def work(t):
        acc = {}
        for r in records(3000, "thread%d" % t):
            acc.setdefault(r["score"] % 101, []).append(r["name"])
        results[t] = digest(sorted((k, len(v), v[0]) for k, v in acc.items()))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


parts = {
    "dicts": dict_part(),
    "lists": list_part(),
    "strings": string_part(),
    "json": json_part(),
    "threads": thread_part(),
}
for name in sorted(parts):
    print(name, digest(parts[name]))
print("checksum", digest(parts))
