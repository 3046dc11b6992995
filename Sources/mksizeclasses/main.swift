// mksizeclasses: the stand-alone size-class generator. Prints the C header goalloc_sizeclasses.h
// (Go's size classes and both size -> class lookup tables) on standard output;
// Scripts/gen-sizeclasses.sh writes it to Sources/CGoAllocShim/include/. It depends only on the
// generator (SizeClassGenerator), never on the C shim that includes the header, so it builds
// even when the committed header is broken.

import SizeClassGenerator

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let usage = """
  usage: mksizeclasses
  Prints the generated C header \(SizeClassTable.headerPath) on standard output
  (\(SizeClassTable.headerRegenerateCommand) writes it into place).

  """

let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("-h") || arguments.contains("--help") {
  print(usage, terminator: "")
} else if let unknown = arguments.first {
  let message = Array(("mksizeclasses: unexpected argument \(unknown)\n" + usage).utf8)
  _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
  exit(2)
} else {
  print(SizeClassTable.go.renderCHeader(), terminator: "")
}
