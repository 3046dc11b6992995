// `goalloc explain`: the table, the JSON, --struct, and one clear line for every bad input.
import Foundation
import Testing

@Suite("goalloc explain")
struct ExplainCLITests {
  @Test("explain 17: class 3 (24 B), 7 B per object, 2395 B per span (29.24%), span classes 6/7")
  func seventeen() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["explain", "17"], timeout: 30)
    #expect(r.exitedCleanly && r.stderr.isEmpty, "\(r)")
    let header = try #require(r.stdoutLines.first)
    #expect(header.hasPrefix("size") && header.contains("class") && header.contains("waste/span"), "\(r)")
    let row = r.stdoutLines[1].split(separator: " ").map(String.init)
    #expect(row == ["17", "3", "24", "8192", "1", "341", "7", "2395", "29.24%", "6/7", "-"], "\(r)")
    // The C API's 16-byte alignment is noted.
    #expect(r.stdout.contains("class 4 (32 B)"), "\(r)")
  }

  @Test("several sizes: a row each; tiny and large rows; --json carries the same figures")
  func severalSizesAndJSON() async throws {
    let cli = try Paths.requireCLI()
    let sizes = ["5", "17", "32768", "100000", "64KiB"]
    let t = try await Subprocess.run(cli.path, ["explain"] + sizes, timeout: 30)
    #expect(t.exitedCleanly, "\(t)")
    let rows = t.stdoutLines.dropFirst().prefix(sizes.count).map { $0.split(separator: " ").map(String.init) }
    #expect(rows.map { $0[0] } == ["5", "17", "32768", "100000", "65536"], "\(t)")
    #expect(rows[0] == ["5", "1", "8", "8192", "1", "1024", "3", "3072", "37.50%", "2/3", "3"], "\(t)")
    #expect(rows[3] == ["100000", "large", "106496", "106496", "13", "1", "6496", "6496", "6.10%", "0/1", "-"], "\(t)")
    #expect(rows[4][1] == "large" && rows[4][4] == "8", "\(t)")

    let j = try await Subprocess.run(cli.path, ["explain", "--json"] + sizes, timeout: 30)
    #expect(j.exitedCleanly, "\(j)")
    let array = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [[String: Any]], "\(j)")
    #expect(array.count == sizes.count)
    let o = array[1]
    #expect(o["size"] as? Int == 17 && o["size_class"] as? Int == 3 && o["object_size"] as? Int == 24, "\(o)")
    #expect(o["span_bytes"] as? Int == 8192 && o["objects_per_span"] as? Int == 341, "\(o)")
    #expect(o["waste_per_object"] as? Int == 7 && o["waste_per_span"] as? Int == 2395, "\(o)")
    #expect((o["waste_per_span_percent"] as? Double).map { abs($0 - 29.24) < 1e-9 } == true, "\(o)")
    #expect(o["scan_span_class"] as? Int == 6 && o["noscan_span_class"] as? Int == 7 && o["tiny"] is NSNull, "\(o)")
    #expect(o["malloc_size_class"] as? Int == 4, "\(o)")
    let tiny = try #require(array[0]["tiny"] as? [String: Any])
    #expect(tiny["objects_per_block"] as? Int == 3 && tiny["block_bytes"] as? Int == 16, "\(tiny)")
    #expect(array[3]["large"] as? Bool == true && array[3]["span_pages"] as? Int == 13, "\(array[3])")
  }

  @Test("--struct lays the C struct out first, then explains its sizeof")
  func structLayout() async throws {
    let cli = try Paths.requireCLI()
    let r = try await Subprocess.run(cli.path, ["explain", "--struct", "int64,int64,uint8"], timeout: 30)
    #expect(r.exitedCleanly, "\(r)")
    #expect(r.stdoutLines.first == "struct{int64, int64, uint8}: 24 B, alignment 8; 17 B of fields, 7 B of padding", "\(r)")
    #expect(r.stdoutLines.contains { $0.split(separator: " ").map(String.init) == ["16", "1", "1", "uint8"] }, "\(r)")
    let row = try #require(r.stdoutLines.first { $0.hasPrefix("24 (struct") })
    #expect(row.contains("  3  ") && row.contains("24  8192"), "\(r)")

    let j = try await Subprocess.run(cli.path, ["explain", "--json", "--struct", "char,char*"], timeout: 30)
    let array = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [[String: Any]], "\(j)")
    let s = try #require(array.first?["struct"] as? [String: Any])
    #expect(s["size"] as? Int == 16 && s["padding_bytes"] as? Int == 7 && s["holds_pointers"] as? Bool == true, "\(s)")
    #expect(array.first?["size_class"] as? Int == 2, "\(array)")
  }

  @Test("bad input: one line naming the problem, exit status 64")
  func badInput() async throws {
    let cli = try Paths.requireCLI()
    let cases: [([String], String)] = [
      (["explain"], "at least one size"),
      (["explain", "0"], "at least 1 byte"),
      (["explain", "-5"], "-5: a size must be at least 1 byte"),
      (["explain", "abc"], "abc: not a size"),
      (["explain", "1.5"], "1.5: not a size"),
      (["explain", "64TiB"], "larger than the largest allocation"),
      (["explain", "99999999999999999999999"], "larger than the largest allocation"),
      (["explain", "--struct", "int64,foo"], "unknown field type \"foo\""),
      (["explain", "--struct", ""], "empty struct"),
      (["explain", "--struct", "uint8[0]"], "bad array length"),
    ]
    for (args, words) in cases {
      let r = try await Subprocess.run(cli.path, args, timeout: 30)
      #expect(!r.timedOut && r.reason == .exit && r.status == 64, "\(args)\n\(r)")
      #expect(r.stderrLines.count == 1 && r.stdout.isEmpty && r.stderr.contains(words), "\(args)\n\(r)")
    }
  }
}
