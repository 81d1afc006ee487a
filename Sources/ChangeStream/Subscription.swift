/// What a tab watches: a table, and optionally only rows whose columns equal
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
  /// every subscription's rows. (A poll matches through its
  /// ``SubscriptionSet``, which gives the same verdicts by lookups.)
  public func matches(_ event: ChangeEvent) -> Bool {
    guard !event.isRefused, event.table == table else { return false }
    if filters.isEmpty { return true }
    if event.truncated || event.operation == .truncate { return true }
    return passes(event, event.newColumns, present: event.hasNewRow)
      || passes(event, event.oldColumns, present: event.hasOldRow)
  }

  private func passes(_ event: ChangeEvent, _ columns: ArraySlice<JSONMemberSpan>, present: Bool) -> Bool {
    guard present else { return false }
    return filters.allSatisfy { column, value in
      columns.contains { event.name(of: $0) == column && event.valueText(of: $0) == value }
    }
  }
}
