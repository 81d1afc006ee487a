import JSON

/// One row change as a worker keeps it: the payload exactly as the trigger
/// sent it, once, with the offsets of what matching and answering need. Rows
/// are not kept parsed: a filter compares a column's text found by its
/// offsets, and an answer splices the payload's members as they are.
///
/// A payload that PBP's triggers could not have produced (see
/// ``TriggerPayload``) keeps its place in the sequence but names no table and
/// holds nothing: it matches no subscription and reaches no client.
public struct ChangeEvent: Sequenced, Sendable {
  public enum Operation: String, Sendable {
    case insert, update, delete, truncate
  }

  /// Where the event stands in the stream (its cursor's position).
  public let position: StreamPosition
  /// Its number in this worker's ring, given when the ring takes it.
  public internal(set) var seq: UInt64 = 0
  /// Empty for a refused payload.
  public let table: String
  public let operation: Operation?
  /// The row was too large for a NOTIFY, or only the database can tell who
  /// may see it: the event names only its key (and, for a table with a row
  /// rule, each row's owner column: see ``TriggerPayload``).
  public let truncated: Bool
  /// Why the payload was refused; nil for an event the triggers produced.
  public let refusal: PayloadRefusal?
  /// The trigger's text; empty for a refused payload.
  let payload: [UInt8]
  let layout: TriggerPayload.Layout
  /// What the event holds in memory, allocations included (the ring's byte budget counts this).
  public let retainedBytes: Int

  public init(position: StreamPosition, payload: [UInt8]) {
    self.position = position
    switch TriggerPayload.validate(payload) {
    case .success(let valid):
      table = valid.table
      operation = valid.operation
      truncated = valid.truncated
      refusal = nil
      self.payload = payload
      layout = valid.layout
    case .failure(let reason):
      table = ""
      operation = nil
      truncated = false
      refusal = reason
      self.payload = []
      layout = TriggerPayload.Layout()
    }
    retainedBytes = Self.retainedBytes(payload: self.payload, layout: layout, table: table)
  }

  /// An event of the notify source, the `seq`-th of its epoch (tests, mostly).
  public init(seq: UInt64, payload: [UInt8]) {
    self.init(position: StreamPosition(major: seq), payload: payload)
    self.seq = seq
  }

  public var isRefused: Bool { refusal != nil }

  public var op: String { operation?.rawValue ?? "" }

  /// The payload's members (without its braces) to splice into an answer's
  /// event object; empty for a refused payload.
  public var answerMembers: ArraySlice<UInt8> {
    payload[Int(layout.membersStart)..<Int(layout.membersEnd)]
  }

  /// The row's key, parsed on demand (logs and tests; matching never needs it).
  public var key: JSONValue {
    guard let span = layout.key else { return .null }
    return (try? JSONParser.parse(payload[Int(span.valueStart)..<Int(span.valueEnd)], maximumDepth: 64)) ?? .null
  }

  public var newColumns: ArraySlice<JSONMemberSpan> { layout.columns[..<Int(layout.newColumnCount)] }
  public var oldColumns: ArraySlice<JSONMemberSpan> { layout.columns[Int(layout.newColumnCount)...] }
  public var hasNewRow: Bool { layout.hasNewRow }
  public var hasOldRow: Bool { layout.hasOldRow }

  /// A column's name as text.
  public func name(of column: JSONMemberSpan) -> String {
    let bytes = payload[Int(column.nameStart)..<Int(column.nameEnd)]
    if !column.nameIsEscaped { return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self) }
    return (try? JSONParser.parse(bytes))?.scalarText ?? ""
  }

  /// The text a filter value is compared with (``JSON/JSONValue/scalarText``):
  /// nil for null, objects and arrays, which no filter matches.
  public func valueText(of column: JSONMemberSpan) -> String? {
    let bytes = payload[Int(column.valueStart)..<Int(column.valueEnd)]
    switch column.kind {
    case .string: return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    case .number, .trueLiteral, .falseLiteral: return String(decoding: bytes, as: UTF8.self)
    case .escapedString: return (try? JSONParser.parse(bytes))?.scalarText
    case .null, .object, .array: return nil
    }
  }

  /// The decoded text of a string column of the new or the old row: nil
  /// when the row lacks the column or holds anything but a string there
  /// (null, a number). What a row rule compares with the viewer's claim; a
  /// key-only event of a table with a row rule holds the owner column alone.
  public func stringValue(ofColumn name: String, new: Bool) -> String? {
    guard let column = column(named: name, new: new) else { return nil }
    let bytes = payload[Int(column.valueStart)..<Int(column.valueEnd)]
    switch column.kind {
    case .string: return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    case .escapedString:
      guard case .string(let text)? = try? JSONParser.parse(bytes) else { return nil }
      return text
    default: return nil
    }
  }

  /// Whether the new or the old row's column `name` is the JSON string
  /// `text`, compared byte for byte as PostgreSQL's deterministic collation
  /// does (Swift's `==` would also equate canonically equivalent texts, which
  /// the row's policy does not). Builds no string for an unescaped name or value.
  func row(new: Bool, holds name: String, string text: String) -> Bool {
    guard let column = column(named: name, new: new) else { return false }
    let bytes = payload[Int(column.valueStart)..<Int(column.valueEnd)]
    switch column.kind {
    case .string: return bytes.dropFirst().dropLast().elementsEqual(text.utf8)
    case .escapedString:
      guard case .string(let decoded)? = try? JSONParser.parse(bytes) else { return false }
      return decoded.utf8.elementsEqual(text.utf8)
    default: return false
    }
  }

  private func column(named name: String, new: Bool) -> JSONMemberSpan? {
    guard new ? hasNewRow : hasOldRow else { return nil }
    for column in new ? newColumns : oldColumns {
      let matches =
        column.nameIsEscaped
        ? self.name(of: column).utf8.elementsEqual(name.utf8)
        : payload[Int(column.nameStart) + 1..<Int(column.nameEnd) - 1].elementsEqual(name.utf8)
      if matches { return column }
    }
    return nil
  }

  /// A row of the payload (`new` or `old`) parsed on demand (tests).
  public func row(new: Bool) -> JSONValue? {
    guard new ? hasNewRow : hasOldRow else { return nil }
    var members: [String: JSONValue] = [:]
    for column in new ? newColumns : oldColumns {
      let bytes = payload[Int(column.valueStart)..<Int(column.valueEnd)]
      members[name(of: column)] = (try? JSONParser.parse(bytes, maximumDepth: 64)) ?? .null
    }
    return .object(members)
  }

  /// Heap blocks are counted with a 16-byte header and the array's own header (32 bytes).
  private static func retainedBytes(payload: [UInt8], layout: TriggerPayload.Layout, table: String) -> Int {
    var bytes = MemoryLayout<ChangeEvent>.stride
    if payload.capacity > 0 { bytes += 48 + payload.capacity }
    if layout.columns.capacity > 0 { bytes += 48 + layout.columns.capacity * MemoryLayout<JSONMemberSpan>.stride }
    // Up to 15 bytes of UTF-8 live in the String itself.
    if table.utf8.count > 15 { bytes += 48 + table.utf8.count }
    return bytes
  }
}
