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
    public var tables: [String]
    public var pollLimits: ChangePoll.Limits
    /// The most bytes of JSON in one collection page (the first row is sent
    /// whatever its size): with large rows a page of 10,000 would be gigabytes.
    public var pageBytes: Int
    public static let defaultPageBytes = 4 << 20

    public init(
      tables: [String], pollLimits: ChangePoll.Limits = .init(), pageBytes: Int = defaultPageBytes
    ) {
      self.tables = tables
      self.pollLimits = pollLimits
      self.pageBytes = pageBytes
    }
  }

  public let configuration: Configuration
  public let catalog: TableCatalog
  /// The worker's position in the change stream, for snapshot reads' cursors.
  public let stream: any StreamPosition
  /// First pages of collections, shared by the worker's threads.
  let collectionCache = CollectionCache()
  /// The whole pool's workers, for the status endpoints.
  public let workerStatuses: (@Sendable () -> [WorkerStatus])?

  public init(
    configuration: Configuration, stream: any StreamPosition,
    workerStatuses: (@Sendable () -> [WorkerStatus])? = nil
  ) {
    self.configuration = configuration
    self.catalog = TableCatalog(configuredNames: configuration.tables)
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
      return .poll(try changePoll(request))
    case ("openapi.json"?, 1):
      try requireGet(request)
      let document = OpenAPIDocument(tables: try servedTables(session), pollLimits: configuration.pollLimits)
      return .response(.json(200, document.text))
    case ("_status"?, 1):
      try requireGet(request)
      return .response(StatusReport(workers: workerStatuses?() ?? [], current: stream.current).json())
    case ("_metrics"?, 1):
      try requireGet(request)
      return .response(StatusReport(workers: workerStatuses?() ?? [], current: stream.current).prometheus())
    case (let name?, 1) where !name.isEmpty:
      return .response(try collection(request, table: try table(String(name), session)))
    case (let name?, 2) where !segments[1].isEmpty:
      // The path is nginx's DOCUMENT_URI, percent-decoded already: decoding
      // again would read /api/t/%2531 as row 1.
      return .response(try item(request, table: try table(String(name), session), key: String(segments[1])))
    default:
      throw .notFound("no such resource: \(request.path)")
    }
  }

  func table(_ name: String, _ session: DatabaseSession) throws(APIError) -> TableResource {
    // The thread's own copy first: the shared catalog's lock, taken by every
    // request of every thread, showed up contended in profiles.
    if let known = session.knownTables[name] { return TableResource(table: known, session: session) }
    guard let info = try catalog.table(named: name, using: session.connected) else { throw .unknownTable(name) }
    session.knownTables[name] = info
    return TableResource(table: info, session: session)
  }

  /// The served tables as the catalog describes them, sorted by name.
  func servedTables(_ session: DatabaseSession) throws(APIError) -> [TableInfo] {
    var tables: [TableInfo] = []
    for name in configuration.tables.sorted() {
      if let info = try catalog.table(named: name, using: session.connected) { tables.append(info) }
    }
    return tables
  }

  // MARK: Helpers

  func requireGet(_ request: APIRequest) throws(APIError) {
    guard request.method == "GET" || request.method == "HEAD" else {
      throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD"])
    }
  }
}
