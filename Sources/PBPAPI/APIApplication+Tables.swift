import JSON

/// The tables' protocol: `/api/{table}` (the collection: keyset pages with
/// the cursor to poll from and validators; form posts of the original) and
/// `/api/{table}/{key}` (one row).
extension APIApplication {
  // MARK: /api/{table}

  func collection(_ request: APIRequest, table: TableResource) throws(APIError) -> HTTPResponse {
    switch request.method {
    case "GET", "HEAD":
      guard let cursor = stream.snapshotCursor(patience: .seconds(1)) else { throw .streamUnavailable() }
      let limit = try limitParameter(request)
      let cursorHeader = HeaderField(name: "PBP-Cursor", value: cursor.description)
      let keyHeader = Self.keyHeader(table)
      let after = request.queryValue("after")
      let cached =
        after == nil ? collectionCache.rows(table: table.table.name, limit: limit, identity: table.identity) : nil
      // The stamp is read after the cursor was taken: a body valid at this
      // stamp misses nothing that cursor's events would not bring.
      let stamp = request.isConditional || cached != nil ? try table.stamp() : nil
      if request.isConditional, let stamp, request.isFresh(stamp) {
        // Unchanged since the client's copy: nothing committed since, so the
        // current cursor misses nothing either.
        return HTTPResponse(status: 304, headers: [cursorHeader, keyHeader] + Self.validators(stamp))
      }
      if let cached, let stamp, cached.stamp == stamp {
        return .json(
          200, cached.rows,
          headers: [cursorHeader, keyHeader] + Self.nextLink(table, limit: limit, after: cached.continuesAfter)
            + Self.validators(stamp))
      }
      let page = try table.list(limit: limit, after: after, byteBudget: configuration.pageBytes)
      if after == nil, let fresh = page.stamp {
        collectionCache.store(
          table: table.table.name, limit: limit, identity: table.identity, rows: page.rows,
          continuesAfter: page.continuesAfter, stamp: fresh)
      }
      return .json(
        200, page.rows,
        headers: [cursorHeader, keyHeader] + Self.nextLink(table, limit: limit, after: page.continuesAfter)
          + (page.stamp.map(Self.validators) ?? []))
    case "POST":
      let created = try table.create(try fields(request, typedFor: table))
      return .json(
        201, created.row,
        headers: [HeaderField(name: "Location", value: "\(Self.prefix)\(table.table.name)/\(created.key)")])
    case "PUT", "PATCH", "DELETE":
      // The original's form posts: `id=…` names the row on the collection URL.
      // Anything else is a method the collection does not have, whatever its body.
      guard mediaType(of: request.contentType) == "application/x-www-form-urlencoded" else {
        throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD", "POST"])
      }
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

  func item(
    _ request: APIRequest, table: TableResource, key: String, fields given: [String: JSONValue]? = nil
  ) throws(APIError) -> HTTPResponse {
    switch request.method {
    case "GET", "HEAD":
      return .json(200, try table.get(key: key), headers: [Self.keyHeader(table)])
    case "PUT", "PATCH":
      let body: [String: JSONValue]
      if let given { body = given } else { body = try fields(request, typedFor: table) }
      let row = try table.update(key: key, body, replace: request.method == "PUT")
      return .json(200, row)
    case "DELETE":
      try table.delete(key: key)
      return .noContent()
    default:
      throw .methodNotAllowed(request.method, allowed: ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
    }
  }

  /// Names the key column, so that a client keeps rows by it without knowing the table.
  static func keyHeader(_ table: TableResource) -> HeaderField {
    HeaderField(name: "PBP-Key", value: table.table.keyColumn)
  }

  /// Where the collection goes on (RFC 8288), when a page stopped at its row
  /// limit or its byte budget: the same `after=` a client takes from a full
  /// page's last row, so that a page cut short by bytes is not taken for the end.
  static func nextLink(_ table: TableResource, limit: Int, after key: String?) -> [HeaderField] {
    guard let key else { return [] }
    let target =
      "\(Self.prefix)\(FormDecoding.percentEncoded(table.table.name))?limit=\(limit)&after=\(FormDecoding.percentEncoded(key))"
    return [HeaderField(name: "Link", value: "<\(target)>; rel=\"next\"")]
  }

  static func validators(_ stamp: TableResource.Stamp) -> [HeaderField] {
    [HeaderField(name: "ETag", value: stamp.etag), HeaderField(name: "Last-Modified", value: stamp.httpDate)]
  }

  private func fields(_ request: APIRequest) throws(APIError) -> [String: JSONValue] {
    try RequestBody.fields(of: request)
  }

  /// A write's fields; a JSON body's values must be of their columns' JSON
  /// types (a form's are text, in PostgreSQL's input syntax).
  private func fields(_ request: APIRequest, typedFor table: TableResource) throws(APIError) -> [String: JSONValue] {
    let fields = try RequestBody.fields(of: request)
    if mediaType(of: request.contentType) != "application/x-www-form-urlencoded" {
      try table.table.checkJSONTypes(of: fields)
    }
    return fields
  }

  private func limitParameter(_ request: APIRequest) throws(APIError) -> Int {
    guard let text = request.queryValue("limit") else { return TableResource.defaultLimit }
    guard let limit = Int(text), limit > 0, limit <= TableResource.maximumLimit else {
      throw .badRequest("invalid_limit", "limit must be a whole number from 1 to \(TableResource.maximumLimit)")
    }
    return limit
  }
}
