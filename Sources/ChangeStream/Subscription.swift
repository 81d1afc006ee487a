/// What a tab watches: a table, optionally only rows whose columns equal
/// given values, and, on a table with a row rule, only the viewer's rows.
public struct Subscription: Hashable, Sendable {
  public let table: String
  /// Column name → the value's text (a query string has no types; `5` and `"5"` agree).
  public let filters: [String: String]
  /// The table's row rule for the poll's viewer; nil on a table without one.
  public let owner: OwnerCondition?

  public init(table: String, filters: [String: String] = [:], owner: OwnerCondition? = nil) {
    self.table = table
    self.filters = filters
    self.owner = owner
  }

  public func matches(_ event: ChangeEvent) -> Bool { form(of: event) != nil }

  /// How the event reaches the subscription, or nil when it does not. A row
  /// change reaches it when it is on the table and either its new or its old
  /// row passes the filters (a row that leaves the filter is reported too).
  /// A truncated event carries no rows to test and goes to every subscription
  /// on its table; the client fetches the row. A TRUNCATE empties every
  /// subscription's rows. With an owner condition, the event must also be the
  /// viewer's (``OwnerCondition/form(of:)``); one that reaches them only as a
  /// removal must pass the filters by its old row, the one they had. (A poll
  /// matches through its ``SubscriptionSet``, which gives the same verdicts by
  /// lookups.)
  public func form(of event: ChangeEvent) -> EventForm? {
    guard !event.isRefused, event.table == table else { return nil }
    let form: EventForm
    if let owner {
      guard let ownersForm = owner.form(of: event) else { return nil }
      form = ownersForm
    } else {
      form = .asIs
    }
    if filters.isEmpty || event.truncated || event.operation == .truncate { return form }
    let passesOld = passes(event, event.oldColumns, present: event.hasOldRow)
    switch form {
    case .asIs: return passesOld || passes(event, event.newColumns, present: event.hasNewRow) ? .asIs : nil
    case .asRemoval: return passesOld ? .asRemoval : nil
    case .asArrival: return passes(event, event.newColumns, present: event.hasNewRow) ? .asArrival : nil
    }
  }

  private func passes(_ event: ChangeEvent, _ columns: ArraySlice<JSONMemberSpan>, present: Bool) -> Bool {
    guard present else { return false }
    return filters.allSatisfy { column, value in
      columns.contains { event.name(of: $0) == column && event.valueText(of: $0) == value }
    }
  }
}
