// GoAllocFormat: number formatting (byte sizes, percentages, fixed decimals) shared by the
// renderers and the command line, without Foundation.

/// Number formatting shared by the renderers and the command line (no Foundation).
public enum GoAllocFormat {
  /// "512 B", "1.5 KiB", "12.3 MiB", "2 GiB" (whole numbers without decimals).
  public static func bytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(bytes)
    var u = 0
    while abs(v) >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    if u == 0 { return "\(bytes) B" }
    return fixed(v, v == v.rounded() ? 0 : 1) + " " + units[u]
  }

  /// "85%", "0.4%" for 0.85, 0.004.
  public static func percent(_ f: Double) -> String {
    let p = f * 100
    return fixed(p, p > 0 && p < 1 ? 1 : 0) + "%"
  }

  /// `x` with `decimals` digits after the point.
  public static func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    let whole = scaled / scale
    let w = Int(whole.rounded(.down)), frac = Int(scaled - Double(w) * scale)
    var text = (x < 0 && scaled != 0 ? "-" : "") + String(w)
    if decimals > 0 {
      let digits = String(frac)
      text += "." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
    }
    return text
  }
}
