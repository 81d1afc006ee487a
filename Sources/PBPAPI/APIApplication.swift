import ChangeStream
import DaemonSupport
import JSON

/// What a request turns into: an answer now, or a poll for the hub to answer.
public enum APIOutcome: Sendable {
  case response(HTTPResponse)
  case poll(ChangePoll)
}

/// The HTTP API of DESIGN.md, shared by every accepting thread of a worker.
public struct APIApplication: Sendable {
  public struct Configuration: Sendable {
    public var tables: [String]
    public var maximumBodyBytes: Int
    public var pollLimits: ChangePoll.Limits

    public init(tables: [String], maximumBodyBytes: Int = 1 << 20, pollLimits: ChangePoll.Limits = .init()) {
      self.tables = tables
      self.maximumBodyBytes = maximumBodyBytes
      self.pollLimits = pollLimits
    }
  }

  public let configuration: Configuration
  public let catalog: TableCatalog
  public let hub: ChangeHub
  /// First pages of collections, shared by the worker's threads.
  let collectionCache = CollectionCache()
  /// The whole pool's workers, for the status endpoints.
  public let workerStatuses: (@Sendable () -> [WorkerStatus])?

  public init(
    configuration: Configuration, hub: ChangeHub, workerStatuses: (@Sendable () -> [WorkerStatus])? = nil
  ) {
    self.configuration = configuration
    self.catalog = TableCatalog(configuredNames: configuration.tables)
    self.hub = hub
    self.workerStatuses = workerStatuses
  }

  public static let prefix = "/api/"

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
      return .response(.json(200, OpenAPIDocument.json(tables: configuration.tables)))
    case ("_status"?, 1):
      try requireGet(request)
      return .response(StatusReport(workers: workerStatuses?() ?? [], current: hub.current).json())
    case ("_metrics"?, 1):
      try requireGet(request)
      return .response(StatusReport(workers: workerStatuses?() ?? [], current: hub.current).prometheus())
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

  private func table(_ name: String, _ session: DatabaseSession) throws(APIError) -> TableResource {
    // The thread's own copy first: the shared catalog's lock, taken by every
    // request of every thread, showed up contended in profiles.
    if let known = session.knownTables[name] { return TableResource(table: known, session: session) }
    guard let info = try catalog.table(named: name, using: session.connected) else { throw .unknownTable(name) }
    session.knownTables[name] = info
    return TableResource(table: info, session: session)
  }

  // MARK: /api/{table}

  private func collection(_ request: APIRequest, table: TableResource) throws(APIError) -> HTTPResponse {
    switch request.method {
    case "GET", "HEAD":
      guard let cursor = hub.snapshotCursor() else { throw .streamUnavailable() }
      let limit = try limitParameter(request)
      let cursorHeader = HeaderField(name: "PBP-Cursor", value: cursor.description)
      let keyHeader = Self.keyHeader(table)
      let after = request.queryValue("after")
      let cached = after == nil ? collectionCache.rows(table: table.table.name, limit: limit) : nil
      // The stamp is read after the cursor was taken: a body valid at this
      // stamp misses nothing that cursor's events would not bring.
      let stamp = request.isConditional || cached != nil ? try table.stamp() : nil
      if request.isConditional, let stamp, request.isFresh(stamp) {
        // Unchanged since the client's copy: nothing committed since, so the
        // current cursor misses nothing either.
        return HTTPResponse(status: 304, headers: [cursorHeader, keyHeader] + Self.validators(stamp))
      }
      if let cached, let stamp, cached.stamp == stamp {
        return .json(200, cached.rows, headers: [cursorHeader, keyHeader] + Self.validators(stamp))
      }
      let (rows, fresh) = try table.list(limit: limit, after: after)
      if after == nil, let fresh {
        collectionCache.store(table: table.table.name, limit: limit, rows: rows, stamp: fresh)
      }
      return .json(200, rows, headers: [cursorHeader, keyHeader] + (fresh.map(Self.validators) ?? []))
    case "POST":
      let created = try table.create(try fields(request))
      return .json(
        201, created.row,
        headers: [HeaderField(name: "Location", value: "\(Self.prefix)\(table.table.name)/\(created.key)")])
    case "PUT", "PATCH", "DELETE":
      // The original's form posts: `id=…` names the row on the collection URL.
      var body = try fields(request)
      guard let key = body.removeValue(forKey: table.table.keyColumn)?.scalarText else {
        throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD", "POST"])
      }
      return try item(request, table: table, key: key, fields: body)
    default:
      throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD", "POST"])
    }
  }

  // MARK: /api/{table}/{key}

  private func item(
    _ request: APIRequest, table: TableResource, key: String, fields given: [String: JSONValue]? = nil
  ) throws(APIError) -> HTTPResponse {
    switch request.method {
    case "GET", "HEAD":
      return .json(200, try table.get(key: key), headers: [Self.keyHeader(table)])
    case "PUT", "PATCH":
      let body: [String: JSONValue]
      if let given { body = given } else { body = try fields(request) }
      let row = try table.update(key: key, body, replace: request.method == "PUT")
      return .json(200, row)
    case "DELETE":
      try table.delete(key: key)
      return .noContent()
    default:
      throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
    }
  }

  // MARK: /api/changes

  private func changePoll(_ request: APIRequest) throws(APIError) -> ChangePoll {
    let isKnown = { (name: String) in configuration.tables.contains(name) }
    switch request.method {
    case "GET":
      return try ChangePoll.parse(query: request.query, limits: configuration.pollLimits, isKnownTable: isKnown)
    case "POST":
      let mediaType = request.contentType?.split(separator: ";").first?.trimmingSpaces().lowercased()
      guard mediaType == nil || mediaType == "application/json" else {
        throw .unsupportedMediaType(mediaType ?? "")
      }
      return try ChangePoll.parse(json: request.body, limits: configuration.pollLimits, isKnownTable: isKnown)
    default:
      throw .methodNotAllowed(request.method, allowed: ["GET", "POST"])
    }
  }

  // MARK: Helpers

  /// Names the key column, so that a client keeps rows by it without knowing the table.
  static func keyHeader(_ table: TableResource) -> HeaderField {
    HeaderField(name: "PBP-Key", value: table.table.keyColumn)
  }

  static func validators(_ stamp: TableResource.Stamp) -> [HeaderField] {
    [HeaderField(name: "ETag", value: stamp.etag), HeaderField(name: "Last-Modified", value: stamp.httpDate)]
  }

  private func requireGet(_ request: APIRequest) throws(APIError) {
    guard request.method == "GET" || request.method == "HEAD" else {
      throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD"])
    }
  }

  private func fields(_ request: APIRequest) throws(APIError) -> [String: JSONValue] {
    try RequestBody.fields(of: request)
  }

  private func limitParameter(_ request: APIRequest) throws(APIError) -> Int {
    guard let text = request.queryValue("limit") else { return TableResource.defaultLimit }
    guard let limit = Int(text), limit > 0, limit <= TableResource.maximumLimit else {
      throw .badRequest("invalid_limit", "limit must be a whole number from 1 to \(TableResource.maximumLimit)")
    }
    return limit
  }
}
