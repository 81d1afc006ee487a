import JSON
import PBPAPI

/// An error answer is JSON that carries the code and the message unchanged,
/// whatever outside text the message quotes.
func checkErrorResponse(_ error: APIError, allowedStatuses: Set<Int>) {
  require(allowedStatuses.contains(error.status), "status \(error.status) for \(error.code)")
  let response = HTTPResponse(error: error)
  // JSONParser refuses \u0000 on purpose (no PostgreSQL text holds NUL), but
  // a message may quote one, as valid JSON: read it as \u0001 here.
  let text = nulEscapesAsOne(String(decoding: response.body, as: UTF8.self))
  guard let body = try? JSONParser.parse(text) else {
    require(false, "the error body is not JSON: \(text)")
    return
  }
  require(body["error"] == .string(error.code), "error code \(error.code) lost in the body")
  let message = error.message.replacing("\0", with: "\u{1}")
  require(body["message"] == .string(message), "error message \(error.message) lost in the body")
}

/// JSON text with each `\u0000` escape (not an escaped backslash followed by
/// `u0000`) turned into `\u0001`.
private func nulEscapesAsOne(_ text: String) -> String {
  var output: [UInt8] = []
  var bytes = text.utf8[...]
  while let byte = bytes.popFirst() {
    output.append(byte)
    guard byte == UInt8(ascii: "\\"), let next = bytes.popFirst() else { continue }
    if next == UInt8(ascii: "u") && bytes.starts(with: "0000".utf8) {
      output += Array("u0001".utf8)
      bytes = bytes.dropFirst(4)
    } else {
      output.append(next)
    }
  }
  return String(decoding: output, as: UTF8.self)
}

/// The tables the poll targets know: `testtype` and `other`, both with `id`
/// (bigint, the key), `val` (text) and `mtime`, as the catalog would describe them.
let fuzzTables: [String: TableInfo] = Dictionary(
  uniqueKeysWithValues: ["testtype", "other"].map { name in
    (
      name,
      TableInfo(
        name: name,
        columns: [
          ColumnInfo(name: "id", type: "bigint", notNull: true, defaultExpression: "identity", isKey: true),
          ColumnInfo(name: "val", type: "text", notNull: true),
          ColumnInfo(name: "mtime", type: "timestamp with time zone", notNull: true, defaultExpression: "now()"),
        ])!
    )
  })

func describeFuzzTable(_ name: String) throws(APIError) -> TableInfo {
  guard let table = fuzzTables[name] else { throw .unknownTable(name) }
  return table
}
