/// Where a worker stands with notifyd's stream.
public enum StreamState: Equatable, Sendable {
  /// Never greeted: no position is known, and no cursor can be judged.
  case unknown
  /// Connected and greeted: the events of `epoch` arrive as they happen.
  case following(epoch: UInt64)
  /// The connection ended. The last position known belongs to `epoch`,
  /// which may have ended too (notifyd restarted): only a new greeting tells.
  case interrupted(epoch: UInt64)

  /// The epoch of the newest position known.
  public var epoch: UInt64? {
    switch self {
    case .unknown: nil
    case .following(let epoch), .interrupted(let epoch): epoch
    }
  }

  public var isFollowing: Bool {
    if case .following = self { return true }
    return false
  }
}
