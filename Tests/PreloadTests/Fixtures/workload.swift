// Compiled by swiftc running under libgoalloc.so, then run under it too.
// Array, Dictionary and String work with results checked against closed forms.
var numbers: [Int] = []
for i in 0..<200_000 { numbers.append(i &* 31 % 1000) }
let total = numbers.reduce(0, +)

var counts: [String: Int] = [:]
for i in 0..<100_000 { counts["k\(i % 5000)", default: 0] += i }

var text = ""
for (key, value) in counts.sorted(by: { $0.key < $1.key }).prefix(100) { text += "\(key)=\(value);" }

var words: [String] = []
for i in 0..<20_000 { words.append(String(repeating: "ab", count: i % 20) + String(i)) }
let joined = words.joined(separator: " ")
let split = joined.split(separator: " ")

var nested: [[Int]] = (0..<500).map { Array(0..<$0) }
nested.removeAll(where: { $0.count % 2 == 1 })
let nestedSum = nested.reduce(0) { $0 + $1.reduce(0, +) }

print("total \(total)")
print("keys \(counts.count) first \(text.prefix(24))")
print("words \(split.count) chars \(joined.utf8.count)")
print("nested \(nested.count) sum \(nestedSum)")
