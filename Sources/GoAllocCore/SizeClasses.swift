// SizeClasses: Go's 67 size classes for 1 B..32 KiB, and the span classes built on them.
//
// The table itself is generated data (CGoAllocShim/include/goalloc_sizeclasses.h, written by
// `goalloc sizeclasses --emit-c` from Go's rules, checked row for row against Go's published
// table by the tests). Here: the constants the rest of the core uses and O(1) accessors.
//
// Invariants:
// - sizeClass(n) is the smallest class with classSize >= n, for 1 <= n <= maxSmallSize;
// - in malloc mode every request >= 16 B gets a class whose size is a multiple of 16
//   (17..24 B go to the 32 B class), so every slot is 16-aligned as C requires;
// - a span class (SpanClass) is a size class and its noscan-ness; 0/1 are large objects, `tiny`
//   is an extra span class (16 B slots, noscan) for blocks of the tiny allocator.
// - objIndex(off) = (off * divMagic) >> 32 == off / classSize for every off in a span (no divide).
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

public let pageShift = 13
public let pageSize = 1 << pageShift  // one heap page = 8 KiB (OS pages are 4 KiB)
public let maxSmallSize = 32768
public let numSizeClasses = 68  // class 0 is the dummy "large" class
public let tinySize = 16
public let tinySizeClass = 2

/// A span class: a size class and whether its objects may hold pointers (Go's `spanClass`),
/// packed as `sizeclass << 1 | noscan`, so every per-class array of the heap and of a cache is
/// indexed by `index` directly. Only this type builds or takes apart the encoding.
///
/// - `sizeclass == 0` (index 0 and 1): a large object, one per span (scan / noscan).
/// - `tiny` (index 136, one past the 68 x 2 classes): the tiny allocator's 16 B blocks, noscan.
/// - What a class means for an object's lifetime: an object keeps its kind for life; `realloc`
///   of an object gives the new block the old one's noscan-ness (its span class's), and the C ABI
///   allocates noscan (C memory is never scanned; a GC mode will add its own classes).
/// - `collected` (the GC mode, MGC.swift): bit 8, `256 | sizeclass << 1 | noscan`. The low byte
///   is the span's *shape* (what `MSpan.spanclass` stores; a collected span says so in
///   `MSpan.collected`), so the malloc world's arrays (`count` entries: an mcache's current
///   spans, counters, lists) never see a collected class; only the mcentrals do
///   (`centralCount` entries, indexed by `index`). Collected classes have no tiny class and no
///   lists.
@frozen public struct SpanClass: Equatable {
  /// The packed value, `sizeclass << 1 | noscan` (or `tiny.index`).
  public let index: Int

  @inline(__always) public init(index: Int) { self.index = index }
  @inline(__always) public init(sizeclass: Int, noscan: Bool) { index = sizeclass &<< 1 | (noscan ? 1 : 0) }
  /// The span class of a large object.
  @inline(__always) public static func large(noscan: Bool) -> SpanClass { SpanClass(sizeclass: 0, noscan: noscan) }
  /// The tiny allocator's blocks (16 B slots, noscan).
  public static let tiny = SpanClass(index: numSizeClasses &<< 1)
  /// Span classes: 68 size classes x {scan, noscan}, plus `tiny` (the malloc world's classes).
  public static let count = numSizeClasses * 2 + 1
  /// The collected (GC mode) bit of `index`.
  public static let collectedBit = 256
  /// Mcentrals: one per index below this (the malloc classes, unused indices 137..255, then the
  /// collected classes 256 + 0..135).
  public static let centralCount = collectedBit + numSizeClasses * 2
  /// A collected (GC mode) class: size class x noscan, bit 8 set.
  @inline(__always) public init(sizeclass: Int, noscan: Bool, collected: Bool) {
    index = (collected ? SpanClass.collectedBit : 0) | sizeclass &<< 1 | (noscan ? 1 : 0)
  }
  /// Whether objects of this class are collected (GC mode).
  @inline(__always) public var collected: Bool { index & SpanClass.collectedBit != 0 }
  /// The class without its collected bit: what a span stores (`MSpan.spanclass`).
  @inline(__always) public var shape: SpanClass { SpanClass(index: index & (SpanClass.collectedBit - 1)) }

  /// The size class (tiny blocks: the 16 B class).
  @inline(__always) public var sizeclass: Int { self == .tiny ? tinySizeClass : (index & 255) &>> 1 }
  /// The size class of a class known not to be `tiny` (no check: for the fast paths).
  @inline(__always) public var smallSizeclass: Int { index &>> 1 }
  @inline(__always) public var noscan: Bool { index & 1 != 0 || self == .tiny }
  @inline(__always) public var isLarge: Bool { index & 254 == 0 }
  @inline(__always) public var isTiny: Bool { self == .tiny }
  /// Small and not tiny: slots of one size class taken one by one.
  @inline(__always) public var isSmall: Bool { UInt(bitPattern: index &- 2) < UInt(SpanClass.tiny.index &- 2) }
}

@inline(__always) @usableFromInline
func sizeToClass(_ size: Int, mallocMode: Bool) -> Int {
  Int(goalloc_size_class_fast(size, mallocMode ? 1 : 0))
}
@inline(__always) @usableFromInline func classSize(_ c: Int) -> Int { Int(goalloc_class_size(UInt32(c))) }
@inline(__always) @usableFromInline func classNPages(_ c: Int) -> Int { Int(goalloc_class_npages(UInt32(c))) }
@inline(__always) @usableFromInline func classNObjs(_ c: Int) -> Int { Int(goalloc_class_nobjs(UInt32(c))) }
@inline(__always) @usableFromInline func classDivMagic(_ c: Int) -> UInt32 { goalloc_class_divmagic(UInt32(c)) }

/// Pages per span of class c (after a class's first `MCentral.goSizedSpans`, which are Go's size).
/// Go's table gives classes above 1 KiB spans of only 2..8 objects,
/// so a thread whose frees are scattered swaps spans every few allocations; GoAlloc's spans hold
/// at least `minSpanObjects` where that fits in `maxScaledSpanPages`, as whole multiples of Go's
/// span (the same tail waste per byte). Classes whose Go span holds 12 or more keep it. (32 made
/// churn 7% faster but xmalloc's peak RSS 20% larger: big spans seldom empty, so their pages
/// are seldom reused by other classes.)
func spanPages(_ c: Int) -> Int {
  let np = classNPages(c), n = classNObjs(c)
  if n >= minSpanObjects { return np }
  let k = max(1, min((minSpanObjects + n - 1) / n, maxScaledSpanPages / np))
  return np * k
}
/// Pages per collected span of class c (MGCCentral): spanPages(c), grown by whole multiples up to
/// `maxCollectedSpanPages` while the span keeps at most `maxCollectedSpanObjects` slots (16-word
/// bitmaps). A collected span's metadata (its MSpan, 128 B) is then a quarter of the heap's share
/// it has at 8 KiB: 0.75 MiB less on a 64 MiB heap of 32 B objects. Collected spans are emptied by
/// the sweep, not by frees scattered over time, so the larger span costs no reuse.
func gcSpanPages(_ c: Int) -> Int {
  let np = spanPages(c), n = np * pageSize / classSize(c)
  let k = max(1, min(maxCollectedSpanPages / np, maxCollectedSpanObjects / n))
  return np * k
}
let maxCollectedSpanPages = 4
let maxCollectedSpanObjects = 1024
/// Slots in a span of class c (spanPages(c) pages).
func spanObjects(_ c: Int) -> Int { spanPages(c) * pageSize / classSize(c) }
let minSpanObjects = 12
let maxScaledSpanPages = 8  // 64 KiB: objIndex's magic stays exact (offset * error < 2^32)

/// Public read-only view of the table, for tools and tests.
public enum SizeClassInfo {
  public static func size(ofClass c: Int) -> Int { classSize(c) }
  public static func pages(ofClass c: Int) -> Int { classNPages(c) }
  public static func objects(ofClass c: Int) -> Int { classNObjs(c) }
  public static func divMagic(ofClass c: Int) -> UInt32 { classDivMagic(c) }
  /// Pages and slots of GoAlloc's spans of class c (Go's span, or a multiple of it: `spanPages`).
  public static func pagesPerSpan(ofClass c: Int) -> Int { spanPages(c) }
  public static func objectsPerSpan(ofClass c: Int) -> Int { spanObjects(c) }
  /// - Parameter mallocMode: 16-byte alignment for requests of 16 B or more.
  public static func sizeClass(for size: Int, mallocMode: Bool = false) -> Int {
    precondition(size >= 1 && size <= maxSmallSize, "size out of the small range")
    return sizeToClass(size, mallocMode: mallocMode)
  }
}
