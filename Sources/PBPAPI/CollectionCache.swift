import DaemonSupport

/// First pages of collections as last read, kept with the table's stamp.
///
/// A table's `version` grows with every committed write, so a page read
/// together with version V (in one snapshot) is still exactly the table's page
/// while a fresh look at the stamp says V: a request then costs that one small
/// query instead of rendering the rows again. Many browsers opening the same
/// page at once is the case this serves; bounded in entries and bytes.
public final class CollectionCache: Sendable {
  /// Who read the page is part of the key: with row security, what a page
  /// holds depends on the role and the claims.
  struct Key: Hashable {
    let table: String
    let limit: Int
    let identity: RequestIdentity?
  }

  struct Entry {
    let rows: String
    let continuesAfter: String?
    let stamp: TableResource.Stamp
    var lastUse: UInt64
  }

  private struct Contents {
    var entries: [Key: Entry] = [:]
    var bytes = 0
    var clock: UInt64 = 0
  }

  // Not Synchronization.Mutex: every GET of a collection takes it (see ``Locked``).
  private let contents = Locked(Contents())
  let maximumEntries: Int
  let maximumBytes: Int

  public init(maximumEntries: Int = 32, maximumBytes: Int = 8 << 20) {
    self.maximumEntries = maximumEntries
    self.maximumBytes = maximumBytes
  }

  func rows(table: String, limit: Int, identity: RequestIdentity? = nil) -> (
    rows: String, continuesAfter: String?, stamp: TableResource.Stamp
  )? {
    contents.withLock { contents in
      let key = Key(table: table, limit: limit, identity: identity)
      guard var entry = contents.entries[key] else { return nil }
      contents.clock += 1
      entry.lastUse = contents.clock
      contents.entries[key] = entry
      return (entry.rows, entry.continuesAfter, entry.stamp)
    }
  }

  func store(
    table: String, limit: Int, identity: RequestIdentity? = nil, rows: String, continuesAfter: String? = nil,
    stamp: TableResource.Stamp
  ) {
    let size = rows.utf8.count
    guard size <= maximumBytes / 4 else { return }
    contents.withLock { contents in
      let key = Key(table: table, limit: limit, identity: identity)
      if let old = contents.entries.removeValue(forKey: key) { contents.bytes -= old.rows.utf8.count }
      while !contents.entries.isEmpty
        && (contents.entries.count >= maximumEntries || contents.bytes + size > maximumBytes)
      {
        let oldest = contents.entries.min { $0.value.lastUse < $1.value.lastUse }!
        contents.entries[oldest.key] = nil
        contents.bytes -= oldest.value.rows.utf8.count
      }
      contents.clock += 1
      contents.entries[key] = Entry(rows: rows, continuesAfter: continuesAfter, stamp: stamp, lastUse: contents.clock)
      contents.bytes += size
    }
  }
}
