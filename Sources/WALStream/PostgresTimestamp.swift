import Glibc

/// PostgreSQL's clock on the replication protocol: microseconds since
/// 2000-01-01 00:00:00 UTC.
public struct PostgresTimestamp: Hashable, Comparable, Sendable {
  public var microsecondsSince2000: Int64

  public init(microsecondsSince2000: Int64) { self.microsecondsSince2000 = microsecondsSince2000 }

  /// 2000-01-01 is 946,684,800 seconds after the Unix epoch.
  public init(unixMicroseconds: Int64) {
    microsecondsSince2000 = unixMicroseconds &- 946_684_800_000_000
  }

  public static func < (lhs: PostgresTimestamp, rhs: PostgresTimestamp) -> Bool {
    lhs.microsecondsSince2000 < rhs.microsecondsSince2000
  }

  /// The wall clock now, for the status updates a reader sends.
  public static func now() -> PostgresTimestamp {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return PostgresTimestamp(unixMicroseconds: Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000)
  }
}
