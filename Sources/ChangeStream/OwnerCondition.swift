/// A table's row rule as it applies to one viewer: the rows whose `column`
/// holds the string `value` (the viewer's claim) are theirs. The API builds
/// it from the poll's token; the worker judges events by it as the table's
/// policy judges rows (sql/01-pbp.sql, `pbp_watch(…, owner_column, owner_claim)`).
///
/// Equal, and hashed, by the texts' UTF-8 bytes, as PostgreSQL compares
/// them: Swift's `==` on strings also equates canonically equivalent texts,
/// and polls whose subscriptions are equal share one answer.
public struct OwnerCondition: Hashable, Sendable, CustomStringConvertible {
  public let column: String
  /// nil: the viewer has no such claim, and no row is theirs.
  public let value: String?

  public init(column: String, value: String?) {
    self.column = column
    self.value = value
  }

  /// How an event reaches a subscription with this condition: as is when its
  /// new row is the viewer's (and its old row, if it has one, was too), as an
  /// arrival when the new row is theirs and the old one was another's, as a
  /// removal when only its old row is (a row that left them), else not at
  /// all. A TRUNCATE empties everyone's rows. A row's owner that is not a
  /// string (null, a number) is no one's.
  public func form(of event: ChangeEvent) -> EventForm? {
    if event.operation == .truncate { return .asIs }
    guard let value else { return nil }
    if event.row(new: true, holds: column, string: value) {
      return event.hasOldRow && !event.row(new: false, holds: column, string: value) ? .asArrival : .asIs
    }
    if event.row(new: false, holds: column, string: value) { return .asRemoval }
    return nil
  }

  public static func == (lhs: OwnerCondition, rhs: OwnerCondition) -> Bool {
    guard lhs.column.utf8.elementsEqual(rhs.column.utf8) else { return false }
    switch (lhs.value, rhs.value) {
    case (nil, nil): return true
    case (let left?, let right?): return left.utf8.elementsEqual(right.utf8)
    default: return false
    }
  }

  public func hash(into hasher: inout Hasher) {
    Self.combine(column, into: &hasher)
    if let value {
      hasher.combine(true)
      Self.combine(value, into: &hasher)
    } else {
      hasher.combine(false)
    }
  }

  private static func combine(_ text: String, into hasher: inout Hasher) {
    hasher.combine(text.utf8.count)
    for byte in text.utf8 { hasher.combine(byte) }
  }

  public var description: String { "\(column) = \(value.map { "\"\($0)\"" } ?? "no claim")" }
}
