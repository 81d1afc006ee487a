import ChangeStream
import JSON
import LongPoll

/// `/api/changes` requests read into polls, within the configured limits.
extension ChangePoll {
  public struct Limits: Sendable {
    public var maximumSubscriptions: Int
    public var defaultTimeout: Duration
    public var maximumTimeout: Duration
    /// Filters (`where` members) one subscription may have: a row has few columns worth filtering on.
    public var maximumFiltersPerSubscription: Int
    /// The longest column name and filter value, in bytes. Generous for names (PostgreSQL's
    /// have at most 63 bytes): a column that does not exist merely matches nothing.
    public var maximumFilterColumnBytes: Int
    public var maximumFilterValueBytes: Int
    /// All of a poll's column names and values together, in bytes.
    public var maximumFilterBytes: Int
    /// All of a poll's filters together (256 rows watched by key need 256).
    public var maximumFilters: Int
    /// A poll's body, in bytes: room for the most subscriptions and filters
    /// allowed, and refused before it is parsed (parsing a megabyte costs a
    /// worker more than answering the poll).
    public var maximumBodyBytes: Int

    public init(
      maximumSubscriptions: Int = 256, defaultTimeout: Duration = .seconds(25), maximumTimeout: Duration = .seconds(55),
      maximumFiltersPerSubscription: Int = 16, maximumFilterColumnBytes: Int = 256, maximumFilterValueBytes: Int = 1024,
      maximumFilterBytes: Int = 32 * 1024, maximumFilters: Int = 1024, maximumBodyBytes: Int = 64 * 1024
    ) {
      self.maximumSubscriptions = maximumSubscriptions
      self.defaultTimeout = defaultTimeout
      self.maximumTimeout = maximumTimeout
      self.maximumFiltersPerSubscription = maximumFiltersPerSubscription
      self.maximumFilterColumnBytes = maximumFilterColumnBytes
      self.maximumFilterValueBytes = maximumFilterValueBytes
      self.maximumFilterBytes = maximumFilterBytes
      self.maximumFilters = maximumFilters
      self.maximumBodyBytes = maximumBodyBytes
    }

    /// Refuses filters over the limits; `total` adds up a poll's filter bytes, `count` its filters.
    func check(_ filters: [String: String], total: inout Int, count: inout Int) throws(APIError) {
      guard filters.count <= maximumFiltersPerSubscription else {
        throw .badRequest("too_many_filters", "at most \(maximumFiltersPerSubscription) filters per subscription")
      }
      for (column, value) in filters {
        guard column.utf8.count <= maximumFilterColumnBytes, value.utf8.count <= maximumFilterValueBytes else {
          throw .badRequest(
            "filter_too_long",
            "a filter's column name may have at most \(maximumFilterColumnBytes) bytes, its value \(maximumFilterValueBytes)"
          )
        }
        total += column.utf8.count + value.utf8.count
      }
      count += filters.count
      guard count <= maximumFilters else {
        throw .badRequest("too_many_filters", "at most \(maximumFilters) filters per poll")
      }
      guard total <= maximumFilterBytes else {
        throw .badRequest("filters_too_large", "a poll's filters may have at most \(maximumFilterBytes) bytes in all")
      }
    }
  }

  /// `POST /api/changes` with `{"cursor": …, "subscriptions": [{"table": …, "where": {…}}], "timeout": seconds}`.
  public static func parse(
    json body: [UInt8], limits: Limits, describe: (String) throws(APIError) -> TableInfo
  ) throws(APIError) -> ChangePoll {
    guard body.count <= limits.maximumBodyBytes else { throw .tooLarge(limit: limits.maximumBodyBytes) }
    let document: JSONValue
    do {
      document = try JSONParser.parse(body)
    } catch {
      throw .badRequest("invalid_json", "the body is not valid JSON: \(error)")
    }
    guard case .object(let members) = document else {
      throw .badRequest("invalid_poll", "the body must be an object with cursor and subscriptions")
    }
    let cursor = try parseCursor(members["cursor"])
    guard case .array(let list)? = members["subscriptions"], !list.isEmpty else {
      throw .badRequest("invalid_poll", "subscriptions must be a non-empty array")
    }
    guard list.count <= limits.maximumSubscriptions else {
      throw .badRequest("too_many_subscriptions", "at most \(limits.maximumSubscriptions) subscriptions per poll")
    }
    var subscriptions: [Subscription] = []
    var describedTables: [TableInfo] = []
    var numericFilters: [Set<String>] = []
    var filterBytes = 0
    var filterCount = 0
    for entry in list {
      guard case .string(let table)? = entry["table"] else {
        throw .badRequest("invalid_subscription", "each subscription needs a table name")
      }
      let described = try describe(table)
      var filters: [String: String] = [:]
      var numbers: Set<String> = []
      switch entry["where"] {
      case nil, .null?: break
      case .object(let conditions)?:
        // Counted before anything is built from them.
        guard conditions.count <= limits.maximumFiltersPerSubscription else {
          throw .badRequest(
            "too_many_filters", "at most \(limits.maximumFiltersPerSubscription) filters per subscription")
        }
        for (column, value) in conditions {
          guard let text = value.scalarText else {
            throw .badRequest("invalid_subscription", "filter values must be strings, numbers or booleans")
          }
          filters[column] = text
          if case .number = value { numbers.insert(column) }
        }
      default:
        throw .badRequest("invalid_subscription", "where must be an object of column: value")
      }
      try limits.check(filters, total: &filterBytes, count: &filterCount)
      subscriptions.append(Subscription(table: table, filters: filters))
      describedTables.append(described)
      numericFilters.append(numbers)
    }
    // After every limit is checked: a poll over one is refused as such, whatever its columns.
    for (index, table) in describedTables.enumerated() {
      subscriptions[index] = Subscription(
        table: table.name,
        filters: try checkFilters(subscriptions[index].filters, numbers: numericFilters[index], on: table))
    }
    let timeoutText: String?
    switch members["timeout"] {
    case nil, .null?: timeoutText = nil
    case .number(let text)?, .string(let text)?: timeoutText = text
    default: throw .badRequest("invalid_timeout", "timeout must be a number of seconds")
    }
    let timeout = try parseTimeout(timeoutText, limits: limits)
    return ChangePoll(cursor: cursor, subscriptions: subscriptions, timeout: timeout)
  }

  /// `GET /api/changes?cursor=…&table=…&where.COLUMN=VALUE&timeout=…`: one subscription.
  public static func parse(
    query: [(String, String)], limits: Limits, describe: (String) throws(APIError) -> TableInfo
  ) throws(APIError) -> ChangePoll {
    var cursorText: String?
    var table: String?
    var timeoutText: String?
    var filters: [String: String] = [:]
    for (name, value) in query {
      switch name {
      case "cursor": cursorText = value
      case "table": table = value
      case "timeout": timeoutText = value
      case let name where name.hasPrefix("where."): filters[String(name.dropFirst(6))] = value
      default: throw .badRequest("unknown_parameter", "unknown query parameter \(JSONWriter.quoted(name))")
      }
    }
    guard let table else { throw .badRequest("invalid_poll", "the table parameter is required") }
    let described = try describe(table)
    var filterBytes = 0
    var filterCount = 0
    try limits.check(filters, total: &filterBytes, count: &filterCount)
    let canonical = try checkFilters(filters, on: described)
    let cursor = try parseCursor(cursorText.map { $0.isEmpty ? JSONValue.null : .string($0) })
    return ChangePoll(
      cursor: cursor, subscriptions: [Subscription(table: table, filters: canonical)],
      timeout: try parseTimeout(timeoutText, limits: limits))
  }

  /// The filters with the values of those named in `numbers` (JSON numbers)
  /// as events write them (``ColumnType/canonicalFilter(_:)``). A filter on a
  /// column the table lacks, or with a value that column's values never have
  /// in an event, would silently match nothing: refused.
  static func checkFilters(_ filters: [String: String], numbers: Set<String> = [], on table: TableInfo)
    throws(APIError) -> [String: String]
  {
    var canonical: [String: String] = [:]
    for (name, given) in filters.sorted(by: { $0.key < $1.key }) {
      guard let column = table.column(named: name) else {
        throw .badRequest("unknown_column", "\(table.name) has no column \(JSONWriter.quoted(name))")
      }
      let value = numbers.contains(name) ? column.kind.canonicalFilter(given) : given
      canonical[name] = value
      if let expected = column.kind.filterRefusal(value) {
        throw .badRequest(
          "invalid_filter",
          "a filter on \(table.name).\(name) (\(column.type)) must be \(expected), not \(JSONWriter.quoted(value))")
      }
    }
    return canonical
  }

  static func parseCursor(_ value: JSONValue?) throws(APIError) -> Cursor? {
    switch value {
    case nil, .null?: return nil
    case .string(let text)?:
      guard let cursor = Cursor(parsing: text) else {
        throw .badRequest("invalid_cursor", "the cursor is not one this server issued")
      }
      return cursor
    default:
      throw .badRequest("invalid_cursor", "the cursor must be a string")
    }
  }

  static func parseTimeout(_ text: String?, limits: Limits) throws(APIError) -> Duration {
    guard let text else { return limits.defaultTimeout }
    guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
      throw .badRequest("invalid_timeout", "timeout must be a number of seconds")
    }
    // Compared as seconds first: a huge number does not fit in Int64 milliseconds.
    guard seconds < limits.maximumTimeout / .seconds(1) else { return limits.maximumTimeout }
    return .milliseconds(Int64(seconds * 1000))
  }
}
