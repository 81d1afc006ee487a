/// A poll's subscriptions, interned once when the poll is read: grouped by
/// table, and per table indexed by column and value. Matching an event is
/// then a lookup per column of its row (the table's width, which the schema
/// bounds, not the client), never a test of every subscription; and the set's
/// hash is computed once, so polls that agree are found without rehashing it.
public struct SubscriptionSet: RandomAccessCollection, Hashable, Sendable {
  private let subscriptions: [Subscription]
  private let byTable: [String: TableIndex]
  /// How many filters each subscription has, by its index.
  private let filterCounts: [Int]
  private let hash: Int

  /// One table's subscriptions.
  private struct TableIndex: Sendable {
    /// Every subscription on the table, in order: what a truncation reaches.
    var all: [Int] = []
    var unfiltered: [Int] = []
    /// Column → value text → the subscriptions with that filter.
    var byColumn: [String: [String: [Int]]] = [:]
  }

  public init(_ subscriptions: [Subscription]) {
    self.subscriptions = subscriptions
    var byTable: [String: TableIndex] = [:]
    for (index, subscription) in subscriptions.enumerated() {
      byTable[subscription.table, default: TableIndex()].all.append(index)
      if subscription.filters.isEmpty { byTable[subscription.table]!.unfiltered.append(index) }
      for (column, value) in subscription.filters {
        byTable[subscription.table]!.byColumn[column, default: [:]][value, default: []].append(index)
      }
    }
    self.byTable = byTable
    tableNames = byTable.keys.sorted()
    filterCounts = subscriptions.map(\.filters.count)
    var hasher = Hasher()
    hasher.combine(subscriptions)
    hash = hasher.finalize()
  }

  public var startIndex: Int { subscriptions.startIndex }
  public var endIndex: Int { subscriptions.endIndex }
  public subscript(position: Int) -> Subscription { subscriptions[position] }

  /// The tables the subscriptions watch, sorted.
  public let tableNames: [String]

  public func watches(table: String) -> Bool { byTable[table] != nil }

  /// The indices, ascending, of the subscriptions the event matches (see
  /// ``Subscription/matches(_:)`` for the rules); empty when none does.
  public func matches(_ event: ChangeEvent) -> [Int] {
    var work = 0
    return matches(event, work: &work)
  }

  /// As ``matches(_:)``, adding to `work` what the test cost: one for the
  /// event, one per column of its rows looked up, one per filter that a
  /// column passed. A scan's budget is counted in these units, so a poll's
  /// CPU is bounded whatever its subscriptions (256 subscriptions that share
  /// one filter a row passes cost 256 per event, not one).
  public func matches(_ event: ChangeEvent, work: inout Int) -> [Int] {
    work += 1
    guard !event.isRefused, let index = byTable[event.table] else { return [] }
    if event.truncated || event.operation == .truncate || index.byColumn.isEmpty { return index.all }
    var passing = index.unfiltered
    let rows = [(event.hasNewRow, event.newColumns), (event.hasOldRow, event.oldColumns)]
    for (present, columns) in rows where present {
      var hits: [Int: Int] = [:]
      work += columns.count
      for column in columns {
        guard let values = index.byColumn[event.name(of: column)], let text = event.valueText(of: column),
          let filtered = values[text]
        else { continue }
        work += filtered.count
        for subscription in filtered { hits[subscription, default: 0] += 1 }
      }
      for (subscription, count) in hits where count == filterCounts[subscription] { passing.append(subscription) }
    }
    guard passing.count > index.unfiltered.count else { return passing }
    return Array(Set(passing)).sorted()
  }

  public static func == (lhs: SubscriptionSet, rhs: SubscriptionSet) -> Bool {
    lhs.hash == rhs.hash && lhs.subscriptions == rhs.subscriptions
  }

  public func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}
