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

  /// The top-level members a trigger may send, as bits: matching a payload's
  /// names against the triggers' sets hashed a set of strings per event.
  struct Members: OptionSet {
    let rawValue: UInt8
    static let table = Members(rawValue: 1 << 0)
    static let op = Members(rawValue: 1 << 1)
    static let key = Members(rawValue: 1 << 2)
    static let mtime = Members(rawValue: 1 << 3)
    static let new = Members(rawValue: 1 << 4)
    static let old = Members(rawValue: 1 << 5)
    static let truncated = Members(rawValue: 1 << 6)

    static let rowChange: Members = [.table, .op, .key, .mtime, .new, .old]
    static let truncatedRow: Members = [.table, .op, .key, .mtime, .truncated]
    static let truncate: Members = [.table, .op, .key, .mtime]
    static let ownedTruncatedRow: Members = rowChange.union(.truncated)

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
      switch name {
      case "table": self = .table
      case "op": self = .op
      case "key": self = .key
      case "mtime": self = .mtime
      case "new": self = .new
      case "old": self = .old
      case "truncated": self = .truncated
      default: return nil
      }
    }
  }

  /// The spans of the top-level members a trigger may send.
  private struct TopLevel {
    var table, op, key, mtime, new, old, truncated: JSONMemberSpan?

    subscript(member: Members) -> JSONMemberSpan? {
      get {
        switch member {
        case .table: table
        case .op: op
        case .key: key
        case .mtime: mtime
        case .new: new
        case .old: old
        default: truncated
        }
      }
      set {
        switch member {
        case .table: table = newValue
        case .op: op = newValue
        case .key: key = newValue
        case .mtime: mtime = newValue
        case .new: new = newValue
        case .old: old = newValue
        default: truncated = newValue
        }
      }
    }
  }

  static func validate(_ payload: [UInt8]) -> Result<Valid, PayloadRefusal> {
    guard payload.count <= StreamFrame.maximumEventPayload else { return .failure(.tooLarge(bytes: payload.count)) }
    // Checked whole, but not built: the payload is kept as it came and its
    // parts are found by the spans below.
    do {
      try JSONParser.validate(payload, maximumDepth: 64)
    } catch {
      return .failure(.notJSON(error))
    }
    let start = JSONMemberScanner.skipWhitespace(payload, 0)
    guard payload[start] == UInt8(ascii: "{") else { return .failure(.notAnObject) }
    let (spans, end) = JSONMemberScanner.members(of: payload, objectAt: start)
    if let twice = duplicate(in: spans, of: payload) { return .failure(.duplicateMember(twice)) }
    var layout = Layout()
    layout.membersStart = UInt32(JSONMemberScanner.skipWhitespace(payload, start + 1))
    layout.membersEnd = UInt32(closingBrace(payload, end: end))

    var names = Members()
    var members = TopLevel()
    for span in spans {
      guard let member = Members(name: name(of: span, in: payload)) else {
        return .failure(.unexpectedMembers(spans.map { name(of: $0, in: payload) }.sorted()))
      }
      names.insert(member)
      members[member] = span
    }
    guard let table = members.table.flatMap({ stringValue(of: $0, in: payload) }), !table.isEmpty else {
      return .failure(.wrongType(member: "table"))
    }
    guard let opText = members.op.flatMap({ stringValue(of: $0, in: payload) }) else {
      return .failure(.wrongType(member: "op"))
    }
    guard let operation = ChangeEvent.Operation(rawValue: opText) else { return .failure(.unknownOperation(opText)) }
    guard let mtime = members.mtime, mtime.kind == .string || mtime.kind == .escapedString else {
      return .failure(.wrongType(member: "mtime"))
    }
    let keyIsNull = members.key?.kind == .null
    layout.key = members.key
    let truncatedIsTrue = members.truncated?.kind == .trueLiteral
    var truncated = false
    switch (operation, names) {
    case (.truncate, .truncate):
      guard keyIsNull else { return .failure(.wrongType(member: "key")) }
    case (.insert, .truncatedRow), (.update, .truncatedRow), (.delete, .truncatedRow):
      guard truncatedIsTrue else { return .failure(.wrongType(member: "truncated")) }
      guard !keyIsNull else { return .failure(.wrongType(member: "key")) }
      truncated = true
    case (.insert, .rowChange), (.update, .rowChange), (.delete, .rowChange):
      guard !keyIsNull else { return .failure(.wrongType(member: "key")) }
      if let refusal = readRows(members, operation, payload, into: &layout, ownerOnly: false) {
        return .failure(refusal)
      }
    case (.insert, .ownedTruncatedRow), (.update, .ownedTruncatedRow), (.delete, .ownedTruncatedRow):
      guard truncatedIsTrue else { return .failure(.wrongType(member: "truncated")) }
      guard !keyIsNull else { return .failure(.wrongType(member: "key")) }
      if let refusal = readRows(members, operation, payload, into: &layout, ownerOnly: true) {
        return .failure(refusal)
      }
      truncated = true
    default:
      return .failure(.unexpectedMembers(spans.map { name(of: $0, in: payload) }.sorted()))
    }
    return .success(Valid(table: table, operation: operation, truncated: truncated, layout: layout))
  }

  /// Checks `new` and `old` against the op (an object where it has such a
  /// row, else null) and records their columns; `ownerOnly`: each row is its
  /// owner column alone, a string or null, named alike in both.
  private static func readRows(
    _ members: TopLevel, _ operation: ChangeEvent.Operation, _ payload: [UInt8], into layout: inout Layout,
    ownerOnly: Bool
  ) -> PayloadRefusal? {
    let needsNew = operation != .delete
    let needsOld = operation != .insert
    for (name, span, needed) in [("new", members.new, needsNew), ("old", members.old, needsOld)] {
      switch span?.kind {
      case .object?: guard needed else { return .wrongType(member: name) }
      case .null?: guard !needed else { return .wrongType(member: name) }
      default: return .wrongType(member: name)
      }
    }
    var ownerColumn: String?
    for (member, span) in [("new", members.new), ("old", members.old)] {
      guard let span, span.kind == .object else { continue }
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

  /// A string member's value, its escapes undone; nil for any other kind.
  private static func stringValue(of span: JSONMemberSpan, in payload: [UInt8]) -> String? {
    let bytes = payload[Int(span.valueStart)..<Int(span.valueEnd)]
    switch span.kind {
    case .string: return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    case .escapedString: return (try? JSONParser.parse(bytes))?.scalarText
    default: return nil
    }
  }

  /// The first name given twice among `spans`. A trigger's object has at
  /// most seven members and a row a few dozen, where comparing each pair
  /// beats hashing them; a set takes over for a long hostile one.
  private static func duplicate(in spans: [JSONMemberSpan], of payload: [UInt8]) -> String? {
    let names = spans.map { name(of: $0, in: payload) }
    guard names.count > 32 else {
      for later in names.indices.dropFirst() where names[..<later].contains(names[later]) { return names[later] }
      return nil
    }
    var seen: Set<String> = []
    for name in names where !seen.insert(name).inserted { return name }
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
