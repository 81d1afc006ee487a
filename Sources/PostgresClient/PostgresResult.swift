import CLibPQ

/// The rows of a completed statement, copied out of libpq's result, so that it
/// is a plain value that may cross threads.
public struct PostgresResult: Sendable {
  public let columns: [String]
  public let rows: [[String?]]
  /// Rows affected, for INSERT/UPDATE/DELETE without RETURNING.
  public let affectedRows: Int

  init(_ result: OpaquePointer) {
    let columnCount = Int(PQnfields(result))
    let rowCount = Int(PQntuples(result))
    columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
    rows = (0..<rowCount).map { row in
      (0..<columnCount).map { column in
        PQgetisnull(result, Int32(row), Int32(column)) == 1
          ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
      }
    }
    affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
  }

  public var isEmpty: Bool { rows.isEmpty }

  /// The single value of a one-row, one-column result.
  public var scalar: String? { rows.first?.first ?? nil }
}
