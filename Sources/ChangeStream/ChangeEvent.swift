import JSON

/// One row change as a worker keeps it: the payload the database trigger sent,
/// parsed once so that every subscription can be tested against it.
public struct ChangeEvent: Sequenced, Sendable {
  public let seq: UInt64
  public let table: String
  public let op: String
  public let key: JSONValue
  public let newRow: JSONValue?
  public let oldRow: JSONValue?
  public let truncated: Bool
  /// The payload's members after its opening brace, ready to be spliced into
  /// a response object without serialising the rows again.
  public let payloadMembers: Substring

  /// Parses a trigger payload. A payload that is not a JSON object (only a
  /// foreign NOTIFY on our channel can send one) keeps its place in the
  /// sequence but names no table, so it matches no subscription.
  public init(seq: UInt64, payload: [UInt8]) {
    self.seq = seq
    guard let value = try? JSONParser.parse(payload, maximumDepth: 64), case .object = value else {
      table = ""
      op = ""
      key = .null
      newRow = nil
      oldRow = nil
      truncated = false
      payloadMembers = "}"
      return
    }
    table = value["table"]?.scalarText ?? ""
    op = value["op"]?.scalarText ?? ""
    key = value["key"] ?? .null
    newRow = value["new"].flatMap { $0.isNull ? nil : $0 }
    oldRow = value["old"].flatMap { $0.isNull ? nil : $0 }
    truncated = value["truncated"] == .bool(true)
    let text = String(decoding: payload, as: UTF8.self)
    let trimmed = text.drop(while: { $0 != "{" }).dropFirst()
    payloadMembers = trimmed
  }
}

/// What one tab watches: a table, and optionally only rows whose columns equal
/// given values.
public struct Subscription: Hashable, Sendable {
  public let table: String
  /// Column name → the value's text (a query string has no types; `5` and `"5"` agree).
  public let filters: [String: String]

  public init(table: String, filters: [String: String] = [:]) {
    self.table = table
    self.filters = filters
  }

  /// A row change matches when it is on the table and either its new or its
  /// old row passes the filters (a row that leaves the filter is reported
  /// too). A truncated event carries no rows to test and goes to every
  /// subscription on its table; the client fetches the row. A TRUNCATE empties
  /// every subscription's rows.
  public func matches(_ event: ChangeEvent) -> Bool {
    guard event.table == table else { return false }
    if filters.isEmpty { return true }
    if event.truncated || event.op == "truncate" { return true }
    return passes(event.newRow) || passes(event.oldRow)
  }

  private func passes(_ row: JSONValue?) -> Bool {
    guard let row else { return false }
    return filters.allSatisfy { column, value in row[column]?.scalarText == value }
  }
}
