import ChangeStream
import JSON
import LongPoll
import WorkerPool

/// What a request turns into: an answer now, or a poll for the worker's hub to answer.
public enum APIOutcome: Sendable {
  case response(HTTPResponse)
  case poll(ChangePoll)
}

/// The HTTP API of DESIGN.md, shared by every accepting thread of a worker:
/// this file routes; the tables' read and write protocol and the changes
/// endpoint are in their own files.
public struct APIApplication: Sendable {
  public struct Configuration: Sendable {
    public var pollLimits: ChangePoll.Limits
    /// The most bytes of JSON in one collection page (the first row is sent
    /// whatever its size): with large rows a page of 10,000 would be gigabytes.
    public var pageBytes: Int
    public static let defaultPageBytes = 4 << 20

    public init(pollLimits: ChangePoll.Limits = .init(), pageBytes: Int = defaultPageBytes) {
      self.pollLimits = pollLimits
      self.pageBytes = pageBytes
    }
  }

  public let configuration: Configuration
  public let catalog: TableCatalog
  /// Whom a request acts for, from its `Authorization` header (nil: none).
  public let decideAccess: @Sendable (_ authorization: String?) -> AccessDecision
  /// The worker's position in the change stream, for snapshot reads' cursors.
  public let stream: any StreamCursorSource
  /// First pages of collections, shared by the worker's threads.
  let collectionCache = CollectionCache()
  /// The whole pool's workers, for the status endpoints.
  public let workerStatuses: (@Sendable () -> [WorkerStatus])?

  public init(
    configuration: Configuration, catalog: TableCatalog,
    decideAccess: @escaping @Sendable (_ authorization: String?) -> AccessDecision, stream: any StreamCursorSource,
    workerStatuses: (@Sendable () -> [WorkerStatus])? = nil
  ) {
    self.configuration = configuration
    self.catalog = catalog
    self.decideAccess = decideAccess
    self.stream = stream
    self.workerStatuses = workerStatuses
  }

  public static let prefix = "/api/"
  public static let changesPath = "/api/changes"

  /// Whether `path` is the changes endpoint, which needs no database.
  public static func isChangesPath(_ path: String) -> Bool { path == changesPath }

  public func handle(_ request: APIRequest, session: DatabaseSession) -> APIOutcome {
    do {
      return try route(request, session: session)
    } catch {
      return .response(HTTPResponse(error: error))
    }
  }

  private func route(_ request: APIRequest, session: DatabaseSession) throws(APIError) -> APIOutcome {
    guard request.path.hasPrefix(Self.prefix) else { throw .notFound("no such resource") }
    let segments = request.path.dropFirst(Self.prefix.count).split(separator: "/", omittingEmptySubsequences: false)
    switch (segments.first, segments.count) {
    case ("changes"?, 1):
      let identity = try identity(of: request)
      return .poll(try authorized(try changePoll(request, session: session), identity: identity, session: session))
    case ("openapi.json"?, 1):
      try requireGet(request)
      let document = OpenAPIDocument(
        tables: try catalogSnapshot(session, reason: .miss).sorted, pollLimits: configuration.pollLimits)
      return .response(.json(200, document.text))
    case ("_tables"?, 1):
      try requireGet(request)
      return .response(.json(200, TableDescription.json(try catalogSnapshot(session, reason: .miss).sorted)))
    case ("_status"?, 1):
      try requireGet(request)
      return .response(
        StatusReport(
          workers: workerStatuses?() ?? [], current: stream.current, slots: ReplicationSlotStatus.read(session)
        ).json())
    case ("_metrics"?, 1):
      try requireGet(request)
      return .response(
        StatusReport(
          workers: workerStatuses?() ?? [], current: stream.current, slots: ReplicationSlotStatus.read(session)
        ).prometheus())
    case (let name?, 1) where !name.isEmpty:
      let identity = try identity(of: request)
      return .response(
        try describedAfresh(String(name), identity, session) { table throws(APIError) in
          try collection(request, table: table)
        })
    case (let name?, 2) where !segments[1].isEmpty:
      // The path is nginx's DOCUMENT_URI, percent-decoded already: decoding
      // again would read /api/t/%2531 as row 1.
      let key = String(segments[1])
      let identity = try identity(of: request)
      return .response(
        try describedAfresh(String(name), identity, session) { table throws(APIError) in
          try item(request, table: table, key: key)
        })
    default:
      throw .notFound("no such resource: \(request.path)")
    }
  }

  /// The catalog as this thread knows it, or the shared one's newest when
  /// this thread's copy is due to be read again (or when `reason` is a miss).
  func catalogSnapshot(_ session: DatabaseSession, reason: CatalogRefreshPolicy.Reason = .use) throws(APIError)
    -> TableCatalog.Snapshot
  {
    let now = ContinuousClock.now
    if reason == .use, let known = session.catalogSnapshot,
      !catalog.policy.mustReload(loadedAt: known.loadedAt, now: now)
    {
      return known
    }
    let fresh = try catalog.snapshot(reason: reason, now: now)
    session.catalogSnapshot = fresh
    return fresh
  }

  /// A served table by name: a name the description does not know has the
  /// catalog read again first, since the table may be newly watched.
  func tableInfo(_ name: String, _ session: DatabaseSession) throws(APIError) -> TableInfo {
    if let known = try catalogSnapshot(session).tables[name] { return known }
    guard let fresh = try catalogSnapshot(session, reason: .miss).tables[name] else { throw .unknownTable(name) }
    return fresh
  }

  /// Runs `body` on the table as described; when it fails in a way that a
  /// change of the table (DDL) since it was described can explain, once more
  /// on the table described afresh. The statement that failed did not run, so
  /// running it again writes nothing twice.
  func describedAfresh(
    _ name: String, _ identity: RequestIdentity, _ session: DatabaseSession,
    _ body: (TableResource) throws(APIError) -> HTTPResponse
  ) throws(APIError) -> HTTPResponse {
    let described = try tableInfo(name, session)
    do {
      return try body(TableResource(table: described, session: session, identity: identity))
    } catch  where Self.mayComeFromAnOldDescription(error) {
      if error.code == "schema_changed" { session.forgetPreparedStatements() }
      guard let fresh = try catalogSnapshot(session, reason: .miss).tables[name] else { throw .unknownTable(name) }
      guard fresh != described || error.code == "schema_changed" else { throw error }
      return try body(TableResource(table: fresh, session: session, identity: identity))
    }
  }

  /// The refusals that the table's description decides, and the database's
  /// failures when the table is not as described.
  static func mayComeFromAnOldDescription(_ error: APIError) -> Bool {
    ["schema_changed", "unknown_column", "missing_field", "no_fields", "invalid_value"].contains(error.code)
  }

  // MARK: Helpers

  func requireGet(_ request: APIRequest) throws(APIError) {
    guard request.method == "GET" || request.method == "HEAD" else {
      throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD"])
    }
  }
}
