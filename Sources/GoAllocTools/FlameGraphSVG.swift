// A flame graph of folded stacks as a standalone SVG: the root at the bottom, each frame a box as
// wide as the bytes below it, children sorted by name so equal stacks line up, boxes under
// 0.1% of the width left out, a <title> per box (hover: name, bytes, share) and text where it fits.
// Colours are warm and stable per frame name; frames from a stripped module are grey.

import Foundation

public enum FlameGraphSVG {
  final class Node {
    var name: String
    var value: Int64 = 0
    var children: [String: Node] = [:]
    init(_ name: String) { self.name = name }
  }

  /// `folded`: "root;...;leaf value" lines (others are ignored).
  public static func render(folded: String, title: String, unit: String = "bytes", width: Int = 1200) -> String {
    let root = Node("all")
    for line in folded.split(separator: "\n") {
      guard let sp = line.lastIndex(of: " "), let v = Int64(line[line.index(after: sp)...]), v > 0 else { continue }
      root.value += v
      var node = root
      for frame in line[..<sp].split(separator: ";") {
        let name = String(frame)
        let child = node.children[name] ?? { let n = Node(name); node.children[name] = n; return n }()
        child.value += v
        node = child
      }
    }
    let rowHeight = 17, top = 40, bottom = 10
    func depth(_ n: Node) -> Int { 1 + (n.children.values.map(depth).max() ?? 0) }
    let rows = depth(root)
    let height = top + rows * rowHeight + bottom
    let usable = Double(width - 20)
    var boxes = ""
    let total = max(root.value, 1)
    func draw(_ n: Node, x: Double, level: Int) {
      let w = usable * Double(n.value) / Double(total)
      if w < usable / 1000 { return }
      let y = height - bottom - (level + 1) * rowHeight
      let share = 100 * Double(n.value) / Double(total)
      let amount = unit == "bytes" ? GoAllocFormat.bytes(Int(n.value)) : "\(n.value) \(unit)"
      let label = "\(n.name) (\(amount), \(String(format: "%.2f", share))%)"
      boxes += "<g class=\"frame\"><title>\(escape(label))</title>"
      boxes += "<rect x=\"\(fmt(10 + x))\" y=\"\(y)\" width=\"\(fmt(max(w - 0.5, 0.1)))\" height=\"\(rowHeight - 1)\" fill=\"\(colour(n.name))\" rx=\"2\"/>"
      let chars = Int((w - 6) / 7)
      if chars >= 3 {
        let text = n.name.count <= chars ? n.name : String(n.name.prefix(chars - 2)) + ".."
        boxes += "<text x=\"\(fmt(13 + x))\" y=\"\(y + rowHeight - 5)\">\(escape(text))</text>"
      }
      boxes += "</g>\n"
      var cx = x
      for c in n.children.values.sorted(by: { $0.name < $1.name }) {
        draw(c, x: cx, level: level + 1)
        cx += usable * Double(c.value) / Double(total)
      }
    }
    draw(root, x: 0, level: 0)
    return """
      <?xml version="1.0" encoding="UTF-8"?>
      <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="monospace" font-size="11">
      <style>.frame text { pointer-events: none; fill: #222; } .frame:hover rect { stroke: #000; stroke-width: 0.8; }</style>
      <rect width="100%" height="100%" fill="#fdfaf3"/>
      <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>
      \(boxes)</svg>

      """
  }

  static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }

  /// Warm colours (red through yellow) hashed from the name; grey for stripped frames.
  static func colour(_ name: String) -> String {
    if name.hasSuffix("[stripped]") || name == "[unknown]" { return "rgb(190,190,190)" }
    var h: UInt32 = 2_166_136_261
    for b in name.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
    let r = 205 + Int(h % 50), g = 80 + Int((h >> 8) % 140), b = 40 + Int((h >> 16) % 40)
    return "rgb(\(r),\(g),\(b))"
  }
}
