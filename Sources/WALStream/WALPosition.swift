/// Where one event stands in the WAL: the commit LSN of its transaction and
/// its index among that transaction's events. The same event has the same
/// position wherever and however often it is read, which is what makes
/// cursors survive restarts and re-reads de-duplicable.
public struct WALPosition: Hashable, Comparable, Sendable, CustomStringConvertible {
  public var commitLSN: LSN
  public var index: UInt32

  public init(commitLSN: LSN, index: UInt32) {
    self.commitLSN = commitLSN
    self.index = index
  }

  public static func < (lhs: WALPosition, rhs: WALPosition) -> Bool {
    (lhs.commitLSN, lhs.index) < (rhs.commitLSN, rhs.index)
  }

  /// `commitLSN:index`, as the diagnostics print it.
  public var description: String { "\(commitLSN):\(index)" }
}
