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
    /// The distinct owner conditions of the table's subscriptions (one per
    /// viewer, so mostly one or none): each is judged once per event.
    var owners: [OwnerCondition] = []
    /// Subscription → its condition's index in `owners`, for those with one.
    var ownerOf: [Int: Int] = [:]
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
      if let owner = subscription.owner {
        let owners = byTable[subscription.table]!.owners
        let slot = owners.firstIndex(of: owner) ?? owners.count
        if slot == owners.count { byTable[subscription.table]!.owners.append(owner) }
        byTable[subscription.table]!.ownerOf[index] = slot
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

  /// The indices, ascending, of the subscriptions the event reaches, either
  /// way (see ``Subscription/form(of:)`` for the rules); empty when none does.
  public func matches(_ event: ChangeEvent) -> [Int] { judge(event).all }

  /// Which subscriptions the event reaches, and how.
  public func judge(_ event: ChangeEvent) -> EventMatches {
    var work = 0
    return judge(event, work: &work)
  }

  /// As ``judge(_:)``, adding to `work` what the test cost: one for the
  /// event, one per column of its rows looked up, one per filter that a
  /// column passed, one per owner condition judged and one per subscription
  /// sorted by it. A scan's budget is counted in these units, so a poll's
  /// CPU is bounded whatever its subscriptions (256 subscriptions that share
  /// one filter a row passes cost 256 per event, not one).
  public func judge(_ event: ChangeEvent, work: inout Int) -> EventMatches {
    work += 1
    guard !event.isRefused, let index = byTable[event.table] else { return EventMatches() }
    let unfilteredEvent = event.truncated || event.operation == .truncate || index.byColumn.isEmpty
    // Tables without a row rule take the path they always took.
    guard !index.owners.isEmpty else {
      if unfilteredEvent { return EventMatches(asIs: index.all) }
      var passing = index.unfiltered
      if event.hasNewRow { passing += filtered(event, event.newColumns, index, work: &work) }
      if event.hasOldRow { passing += filtered(event, event.oldColumns, index, work: &work) }
      guard passing.count > index.unfiltered.count else { return EventMatches(asIs: passing) }
      return EventMatches(asIs: Array(Set(passing)).sorted())
    }
    return judgeOwned(event, index, unfilteredEvent: unfilteredEvent, work: &work)
  }

  /// A table some subscriptions of which have an owner condition: each
  /// condition is judged once, then each subscription that passes its filters
  /// is sorted by its condition's verdict (a removal must pass them by the old row).
  private func judgeOwned(
    _ event: ChangeEvent, _ index: TableIndex, unfilteredEvent: Bool, work: inout Int
  ) -> EventMatches {
    work += index.owners.count
    let forms = index.owners.map { $0.form(of: event) }
    var matches = EventMatches()
    func sort(_ subscription: Int, passesOld: Bool, passesNew: Bool) {
      work += 1
      switch index.ownerOf[subscription].map({ forms[$0] }) ?? .asIs {
      case .asIs?: matches.asIs.append(subscription)
      case .asRemoval? where passesOld: matches.asRemoval.append(subscription)
      case .asArrival? where passesNew: matches.asArrival.append(subscription)
      case .asRemoval?, .asArrival?, nil: break
      }
    }
    if unfilteredEvent {
      for subscription in index.all { sort(subscription, passesOld: true, passesNew: true) }
      return matches
    }
    let byNew = Set(event.hasNewRow ? filtered(event, event.newColumns, index, work: &work) : [])
    let byOld = Set(event.hasOldRow ? filtered(event, event.oldColumns, index, work: &work) : [])
    for subscription in Set(index.unfiltered).union(byNew).union(byOld).sorted() {
      let unfiltered = filterCounts[subscription] == 0
      sort(
        subscription, passesOld: unfiltered || byOld.contains(subscription),
        passesNew: unfiltered || byNew.contains(subscription))
    }
    return matches
  }

  /// The subscriptions with filters that the row passes (in no order): a
  /// lookup per column of the row.
  private func filtered(
    _ event: ChangeEvent, _ columns: ArraySlice<JSONMemberSpan>, _ index: TableIndex, work: inout Int
  ) -> [Int] {
    var hits: [Int: Int] = [:]
    work += columns.count
    for column in columns {
      guard let values = index.byColumn[event.name(of: column)], let text = event.valueText(of: column),
        let filtered = values[text]
      else { continue }
      work += filtered.count
      for subscription in filtered { hits[subscription, default: 0] += 1 }
    }
    return hits.compactMap { $0.value == filterCounts[$0.key] ? $0.key : nil }
  }

  public static func == (lhs: SubscriptionSet, rhs: SubscriptionSet) -> Bool {
    lhs.hash == rhs.hash && lhs.subscriptions == rhs.subscriptions
  }

  public func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}
