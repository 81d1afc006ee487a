import Glibc

/// A wall-clock instant in seconds since the Unix epoch, the scale of a
/// token's `exp`, `nbf` and `iat` (RFC 7519's NumericDate, which may have a
/// fraction). Verification takes it as a parameter so that tests choose it.
public struct UnixTime: Comparable, Sendable {
  public var seconds: Double

  public init(seconds: Double) { self.seconds = seconds }

  public static func now() -> UnixTime {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return UnixTime(seconds: Double(time.tv_sec) + Double(time.tv_nsec) / 1_000_000_000)
  }

  public static func < (lhs: UnixTime, rhs: UnixTime) -> Bool { lhs.seconds < rhs.seconds }
}
