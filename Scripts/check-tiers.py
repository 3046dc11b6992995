#!/usr/bin/env python3
"""Checks that calls in GoAllocCore run downwards through the tiers (docs/DESIGN.md, "Tiers").

Every file of Sources/GoAllocCore belongs to one tier; a function or computed property defined
in a file may be used only from files of the same tier or a higher one. The check is textual:
it collects the names of functions and computed properties defined in exactly one file (stored
properties and names defined in several files are not tracked) and reports each use of such a
name, outside comments, in a file of a lower tier. Exit status 1 when there is any, or when a
file has no tier. Usage: Scripts/check-tiers.py [SOURCES_DIR]
"""
import os
import re
import sys

# Highest tier first. The numbers are what matters: calls go from higher to lower or equal.
TIERS = {
    # objects the program pools for reuse (Go's sync.Pool): above every entry point it uses
    7: ["Pool"],
    # entry points, process and thread lifecycle, and the tools that read every tier
    6: ["Malloc", "Free", "Realloc", "Process", "TestingSupport",
        "MemStats", "HeapMap", "Invariants", "AllocTrace", "HeapProfile",
        "MGC", "MallocGC", "MGCConcurrent",                # (GC mode: the cycle, its API, collected allocation,
        "MGCSpecials", "MGCSpecialsMark", "MFinal", "Weak"],  #  specials: finalizers, cleanups, weak pointers)
    5: ["MCache", "FreeList", "SecureMode", "LargeBins",   # per-thread cache, its free lists, secure mode, large bins,
        "MemoryLimit",                                     # the cache near the memory limit
        "MGCMark", "MGCWork", "MGCWorkers",                # GC mode: marking, its queues and helper threads,
        "MGCSweep", "MGCPacer", "MGCCentral",              # sweeping, pacing, span lists,
        "MGCDirty", "MGCCheckmark", "MGCAssist",           # written pages, the checkmark mode, mark assists,
        "MGCLimiter", "MGCBarrier"],                       # the GC CPU limiter, the write barrier
    4: ["MCentral"],                                       # per span class
    3: ["MHeap", "LargeCache", "Scavenger", "HeapArena", "HeapAddress"],  # the page heap, its services
    2: ["PageAlloc", "PageCache"],                         # runs of pages
    1: ["MSpan"],                                          # one span's slots and bitmaps
    0: ["SizeClasses", "FixAlloc", "PersistentAlloc", "OS", "Debug", "SpinLock", "Atomics"],
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "GoAllocCore")
    tier = {name: t for t, names in TIERS.items() for name in names}
    sources, defined, stored = {}, {}, set()
    problems = []
    for f in sorted(os.listdir(root)):
        if not f.endswith(".swift"):
            continue
        name = f[:-len(".swift")]
        if name not in tier:
            problems.append(f"{f}: no tier (add it to Scripts/check-tiers.py and docs/DESIGN.md)")
            continue
        text = re.sub(r"//[^\n]*", "", open(os.path.join(root, f)).read())
        text = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
        sources[name] = text
        for m in re.finditer(r"\bfunc\s+([A-Za-z_]\w*)", text):
            defined.setdefault(m.group(1), set()).add(name)
        for m in re.finditer(r"\b(?:var|let)\s+([A-Za-z_]\w*)\s*(:[^={\n]*)?(\{)?", text):
            if m.group(3):
                defined.setdefault(m.group(1), set()).add(name)   # computed property
            else:
                stored.add(m.group(1))
    for ident, files in sorted(defined.items()):
        if len(files) != 1 or ident in stored:
            continue
        (home,) = files
        use = re.compile(r"(?<![\w.])(?:\w+\.)?" + re.escape(ident) + r"\b(?!\s*:)|\." + re.escape(ident) + r"\b")
        for name, text in sources.items():
            if tier[name] >= tier[home]:
                continue
            for m in use.finditer(text):
                if text[max(0, m.start() - 8):m.start()].endswith("pointee"):
                    continue
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{name}.swift:{line}: uses {ident} of {home}.swift "
                                f"(tier {tier[name]} below tier {tier[home]})")
                break
    for p in problems:
        print(p)
    print(f"check-tiers: {len(sources)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
