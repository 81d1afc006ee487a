import Testing

@testable import PBPAPI

@Suite struct TableCatalogTests {
  /// Rows as `TableCatalog.describeSQL` returns them: table, column, type,
  /// not null, default, generated, key.
  static let rows: [[String?]] = [
    ["testtype", "id", "bigint", "t", "nextval('testtype_id_seq'::regclass)", "f", "t"],
    ["testtype", "val", "text", "t", nil, "f", "f"],
    ["testtype", "mtime", "timestamp with time zone", "t", "clock_timestamp()", "f", "f"],
    ["todo", "todo_id", "bigint", "t", "identity", "f", "t"],
    ["todo", "title", "text", "t", nil, "f", "f"],
    ["todo", "done", "boolean", "t", "false", "f", "f"],
    ["todo", "due", "date", "f", nil, "f", "f"],
    ["todo", "title_length", "integer", "f", nil, "t", "f"],
    ["todo", "mtime", "timestamp with time zone", "t", "clock_timestamp()", "f", "f"],
    ["nokey", "a", "text", "f", nil, "f", "f"],
    ["coded", "code", "text", "t", nil, "f", "t"],
    ["coded", "val", "text", "f", nil, "f", "f"],
  ]

  @Test func describesEachTableWithItsKey() {
    let tables = TableCatalog.describe(rows: Self.rows)
    #expect(tables.map(\.name) == ["testtype", "todo", "coded"], "a table without a key is not served")
    #expect(tables.map(\.keyColumn) == ["id", "todo_id", "code"])
    #expect(tables[1].columns.map(\.name) == ["todo_id", "title", "done", "due", "title_length", "mtime"])
    #expect(tables[1].columns[0].defaultExpression == "identity")
  }

  @Test func whatBodiesMayGive() throws {
    let tables = TableCatalog.describe(rows: Self.rows)
    let todo = tables[1]
    #expect(todo.writableColumns.map(\.name) == ["title", "done", "due"], "not the drawn key, mtime, generated")
    #expect(todo.requiredColumns.map(\.name) == ["title"])
    #expect(todo.updatableColumns.map(\.name) == ["title", "done", "due"])
    let coded = tables[2]
    #expect(coded.writableColumns.map(\.name) == ["code", "val"], "a key without a default is given on insert")
    #expect(coded.requiredColumns.map(\.name) == ["code"])
    #expect(coded.updatableColumns.map(\.name) == ["val"], "but never changed: the URL names the row")
  }

  @Test func theDescriptionIsJSONForClients() {
    let json = TableDescription.json([TableCatalog.describe(rows: Self.rows)[2]])
    #expect(
      json
        == #"{"tables":[{"columns":[{"default":null,"key":true,"name":"code","nullable":false,"required":true,"type":"text","writable":true},{"default":null,"key":false,"name":"val","nullable":true,"required":false,"type":"text","writable":true}],"key":"code","name":"coded"}]}"#
    )
  }

  @Test func aDescriptionIsReadAgainWhenOldOrWhenItFailedARequest() {
    let policy = CatalogRefreshPolicy(maximumAge: .seconds(5), missInterval: .milliseconds(50))
    let start = ContinuousClock.now
    #expect(policy.mustReload(loadedAt: nil, now: start))
    #expect(!policy.mustReload(loadedAt: start, now: start + .seconds(4)))
    #expect(policy.mustReload(loadedAt: start, now: start + .seconds(5)))
    // A reading from before a miss may predate the change that caused it
    // (DDL committed just after it): it never serves the miss.
    #expect(
      policy.missReading(lastReadingAt: start, failedAt: start + .milliseconds(10)) == start + .milliseconds(50),
      "after the miss, and at most one per interval")
    #expect(policy.missReading(lastReadingAt: start, failedAt: start + .milliseconds(60)) == start + .milliseconds(60))
    #expect(policy.missReading(lastReadingAt: nil, failedAt: start) == start)
    #expect(
      policy.missReading(lastReadingAt: start + .milliseconds(20), failedAt: start + .milliseconds(10)) == nil,
      "read since the miss: it serves")
  }
}

@Suite struct ColumnTypeTests {
  @Test func classifiesPostgreSQLsTypeNames() {
    #expect(ColumnType(formatType: "bigint") == .integer(bits: 64))
    #expect(ColumnType(formatType: "smallint") == .integer(bits: 16))
    #expect(ColumnType(formatType: "numeric(10,2)") == .decimal)
    #expect(ColumnType(formatType: "double precision") == .floating)
    #expect(ColumnType(formatType: "character varying(20)") == .text)
    #expect(ColumnType(formatType: "timestamp with time zone") == .timestamp(withTimeZone: true))
    #expect(ColumnType(formatType: "timestamp without time zone") == .timestamp(withTimeZone: false))
    #expect(ColumnType(formatType: "time without time zone") == .time)
    #expect(ColumnType(formatType: "text[]") == .array(of: "text"))
    #expect(ColumnType(formatType: "jsonb") == .json)
    #expect(ColumnType(formatType: "interval") == .other)
  }

  @Test func filterValuesMustBeWhatEventsWrite() {
    #expect(ColumnType.integer(bits: 32).filterRefusal("2147483647") == nil)
    #expect(ColumnType.integer(bits: 32).filterRefusal("2147483648") != nil)
    #expect(ColumnType.integer(bits: 64).filterRefusal("007") != nil, "row_to_json writes 7")
    #expect(ColumnType.integer(bits: 64).filterRefusal("-9223372036854775808") == nil)
    #expect(ColumnType.boolean.filterRefusal("t") != nil)
    #expect(ColumnType.decimal.filterRefusal("1e3") == nil)
    #expect(ColumnType.text.filterRefusal("") == nil)
    #expect(ColumnType.json.filterRefusal("{}") != nil)
  }
}

@Suite struct TableAccessTests {
  @Test func readersAndRowRulesComeWithTheTables() throws {
    let tables = TableCatalog.describe(
      rows: TableCatalogTests.rows, readers: [["todo", "pbp_anon"], ["todo", "pbp_user"], ["coded", "pbp_user"]],
      rules: [["coded", "val", "sub"]])
    let todo = try #require(tables.first { $0.name == "todo" })
    #expect(todo.mayBeRead(by: "pbp_anon") && todo.mayBeRead(by: "pbp_user"))
    #expect(todo.rowRule == nil)
    let coded = try #require(tables.first { $0.name == "coded" })
    #expect(!coded.mayBeRead(by: "pbp_anon"), "a role without SELECT may not subscribe")
    #expect(coded.rowRule == RowRule(ownerColumn: "val", ownerClaim: "sub"))
    let testtype = try #require(tables.first { $0.name == "testtype" })
    #expect(!testtype.mayBeRead(by: "pbp_anon"), "no reader listed: nobody")
  }

  @Test func anIdentityKeepsItsClaimsAsRowRulesReadThem() {
    let identity = RequestIdentity(
      role: "pbp_user", subject: "alice", claims: #"{"sub":"alice","n":5,"admin":true,"groups":["a"],"x":null}"#)
    #expect(identity.claimValues == ["sub": "alice", "n": "5", "admin": "true"])
    #expect(RequestIdentity(role: "pbp_anon", subject: nil, claims: "{}").claimValues.isEmpty)
  }
}
