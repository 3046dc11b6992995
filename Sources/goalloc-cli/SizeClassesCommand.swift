// `goalloc sizeclasses`: prints the size-class table that SizeClassGenerator derives from Go's
// rules (the table, CSV, or the C header that mksizeclasses writes).

import ArgumentParser
import SizeClassGenerator

struct SizeClassesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sizeclasses",
    abstract: "Print the generated size-class table.",
    discussion: """
      Without options, prints Go's layout: class, bytes/obj, bytes/span, objects, tail waste and \
      max waste. --csv prints the same rows as CSV; --emit-c prints the C header \
      \(SizeClassTable.headerPath) (regenerate it with \(SizeClassTable.headerRegenerateCommand)).
      """
  )

  @Flag(help: "Print CSV: class,bytes_per_obj,bytes_per_span,objects,tail_waste,max_waste_percent.")
  var csv = false

  @Flag(name: .customLong("emit-c"), help: "Print the generated C header goalloc_sizeclasses.h.")
  var emitC = false

  func validate() throws {
    if csv && emitC { throw ValidationError("--csv and --emit-c cannot be used together.") }
  }

  func run() throws {
    let table = SizeClassTable.go
    let text = csv ? table.renderCSV() : emitC ? table.renderCHeader() : table.renderText()
    print(text, terminator: "")
  }
}
