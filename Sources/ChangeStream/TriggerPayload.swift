import JSON

/// Why a payload on the channel is not one PBP's triggers produce. Anyone who
/// can NOTIFY on the channel can send anything; only payloads of the
/// triggers' exact shape reach clients (their members are spliced into the
/// answers, so an extra member such as `cursor` must never get through).
public enum PayloadRefusal: Error, Equatable, Sendable, CustomStringConvertible {
  /// Longer than a stream frame may carry (``StreamFrame/maximumLength``: a
  /// trigger's payload has under 8000 bytes with the notify source and at
  /// most 8 MiB with the wal source).
  case tooLarge(bytes: Int)
  case notJSON(JSONParseError)
  case notAnObject
  case duplicateMember(String)
  /// The members are not one of the triggers' sets.
  case unexpectedMembers([String])
  case wrongType(member: String)
  case unknownOperation(String)

  public var description: String {
    switch self {
    case .tooLarge(let bytes): "\(bytes) bytes, more than an event can hold"
    case .notJSON(let error): "not JSON: \(error)"
    case .notAnObject: "not a JSON object"
    case .duplicateMember(let name): "member \(name) given twice"
    case .unexpectedMembers(let names): "members \(names.joined(separator: ", ")) are not a trigger's"
    case .wrongType(let member): "member \(member) has the wrong type"
    case .unknownOperation(let op): "unknown op \(op)"
    }
  }
}

/// The shapes `pbp_notify()` and `pbp_notify_truncate()` (sql/01-pbp.sql)
/// produce, and nothing else:
/// - a row change: `table`, `op` (insert, update or delete), `key`, `mtime`,
///   `new` and `old` (each an object, or null where the op has no such row);
/// - a row too large for a NOTIFY: `table`, `op`, `key`, `mtime`, `truncated: true`;
/// - the same of a table with a row rule (`pbp_private.key_only_event`),
///   which also says whose the rows are: `new` and `old` (null where the op
///   has no such row, as in a row change) each an object of one member, the
///   rule's owner column (the same in both), whose value is a string or null;
/// - a TRUNCATE: `table`, `op: "truncate"`, `key: null`, `mtime`.
public enum TriggerPayload {
  /// Where the parts of a valid payload are, as offsets into it.
  struct Layout: Sendable {
    var membersStart: UInt32 = 0
    var membersEnd: UInt32 = 0
    var key: JSONMemberSpan?
    /// The new row's columns, then the old row's.
    var columns: [JSONMemberSpan] = []
    var newColumnCount: UInt16 = 0
    var hasNewRow = false
    var hasOldRow = false
  }

  struct Valid {
    let table: String
    let operation: ChangeEvent.Operation
    let truncated: Bool
    let layout: Layout
  }

  private static let rowChange: Set<String> = ["table", "op", "key", "mtime", "new", "old"]
  private static let truncatedRow: Set<String> = ["table", "op", "key", "mtime", "truncated"]
  private static let truncate: Set<String> = ["table", "op", "key", "mtime"]
  private static let ownedTruncatedRow = rowChange.union(["truncated"])

  static func validate(_ payload: [UInt8]) -> Result<Valid, PayloadRefusal> {
    guard payload.count <= StreamFrame.maximumEventPayload else { return .failure(.tooLarge(bytes: payload.count)) }
    let value: JSONValue
    do {
      value = try JSONParser.parse(payload, maximumDepth: 64)
    } catch {
      return .failure(.notJSON(error))
    }
    guard case .object(let members) = value else { return .failure(.notAnObject) }
    // The parser keeps the last of two equal names; the text is scanned for them.
    let start = JSONMemberScanner.skipWhitespace(payload, 0)
    let (spans, end) = JSONMemberScanner.members(of: payload, objectAt: start)
    guard spans.count == members.count else {
      return .failure(.duplicateMember(duplicate(in: spans, of: payload) ?? "?"))
    }
    var layout = Layout()
    layout.membersStart = UInt32(JSONMemberScanner.skipWhitespace(payload, start + 1))
    layout.membersEnd = UInt32(closingBrace(payload, end: end))

    let names = Set(members.keys)
    guard case .string(let table)? = members["table"], !table.isEmpty else {
      return .failure(.wrongType(member: "table"))
    }
    guard case .string(let opText)? = members["op"] else { return .failure(.wrongType(member: "op")) }
    guard let operation = ChangeEvent.Operation(rawValue: opText) else { return .failure(.unknownOperation(opText)) }
    guard case .string? = members["mtime"] else { return .failure(.wrongType(member: "mtime")) }
    let key = members["key"]
    layout.key = spans.first { name(of: $0, in: payload) == "key" }
    var truncated = false
    switch (operation, names) {
    case (.truncate, truncate):
      guard key == .null else { return .failure(.wrongType(member: "key")) }
    case (.insert, truncatedRow), (.update, truncatedRow), (.delete, truncatedRow):
      guard members["truncated"] == .bool(true) else { return .failure(.wrongType(member: "truncated")) }
      guard key != .null else { return .failure(.wrongType(member: "key")) }
      truncated = true
    case (.insert, rowChange), (.update, rowChange), (.delete, rowChange):
      guard key != .null else { return .failure(.wrongType(member: "key")) }
      if let refusal = readRows(members, spans, operation, payload, into: &layout, ownerOnly: false) {
        return .failure(refusal)
      }
    case (.insert, ownedTruncatedRow), (.update, ownedTruncatedRow), (.delete, ownedTruncatedRow):
      guard members["truncated"] == .bool(true) else { return .failure(.wrongType(member: "truncated")) }
      guard key != .null else { return .failure(.wrongType(member: "key")) }
      if let refusal = readRows(members, spans, operation, payload, into: &layout, ownerOnly: true) {
        return .failure(refusal)
      }
      truncated = true
    default:
      return .failure(.unexpectedMembers(names.sorted()))
    }
    return .success(Valid(table: table, operation: operation, truncated: truncated, layout: layout))
  }

  /// Checks `new` and `old` against the op (an object where it has such a
  /// row, else null) and records their columns; `ownerOnly`: each row is its
  /// owner column alone, a string or null, named alike in both.
  private static func readRows(
    _ members: [String: JSONValue], _ spans: [JSONMemberSpan], _ operation: ChangeEvent.Operation,
    _ payload: [UInt8], into layout: inout Layout, ownerOnly: Bool
  ) -> PayloadRefusal? {
    let needsNew = operation != .delete
    let needsOld = operation != .insert
    for (member, needed) in [("new", needsNew), ("old", needsOld)] {
      switch members[member] {
      case .object?: guard needed else { return .wrongType(member: member) }
      case .null?: guard !needed else { return .wrongType(member: member) }
      default: return .wrongType(member: member)
      }
    }
    var ownerColumn: String?
    for member in ["new", "old"] {
      guard let span = spans.first(where: { name(of: $0, in: payload) == member }), span.kind == .object else {
        continue
      }
      let row = JSONMemberScanner.members(of: payload, objectAt: Int(span.valueStart)).members
      if let twice = duplicate(in: row, of: payload) { return .duplicateMember("\(member).\(twice)") }
      if ownerOnly {
        guard row.count == 1, [.string, .escapedString, .null].contains(row[0].kind) else {
          return .wrongType(member: member)
        }
        let column = name(of: row[0], in: payload)
        if let ownerColumn, !ownerColumn.utf8.elementsEqual(column.utf8) { return .wrongType(member: member) }
        ownerColumn = column
      }
      layout.columns += row
      if member == "new" {
        layout.newColumnCount = UInt16(row.count)
        layout.hasNewRow = true
      } else {
        layout.hasOldRow = true
      }
    }
    return nil
  }

  private static func name(of span: JSONMemberSpan, in payload: [UInt8]) -> String {
    let bytes = payload[Int(span.nameStart)..<Int(span.nameEnd)]
    if !span.nameIsEscaped { return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self) }
    return (try? JSONParser.parse(bytes))?.scalarText ?? ""
  }

  private static func duplicate(in spans: [JSONMemberSpan], of payload: [UInt8]) -> String? {
    var seen: Set<String> = []
    for span in spans where !seen.insert(name(of: span, in: payload)).inserted { return name(of: span, in: payload) }
    return nil
  }

  /// The offset of the object's closing brace, with whitespace before it skipped back over.
  private static func closingBrace(_ payload: [UInt8], end: Int) -> Int {
    var index = end - 1
    while index > 0,
      payload[index - 1] == 0x20 || payload[index - 1] == 0x0A || payload[index - 1] == 0x0D
        || payload[index - 1] == 0x09
    {
      index -= 1
    }
    return index
  }
}
