/// Bytes queued for a socket that takes them at its own pace.
///
/// Written bytes are released as they go: once the written prefix is large
/// and at least half the storage, the rest moves to the front, so a client
/// that never drains completely does not keep everything it was ever sent.
public struct OutputBuffer: Sendable {
  /// A written prefix smaller than this is left in place: moving it would cost more than it frees.
  public static let compactionThreshold = 64 * 1024
  /// Storage above this is given back when the buffer empties, not kept for reuse.
  static let retainedCapacity = 1 << 20

  private var bytes: [UInt8] = []
  private var start = 0

  public init() {}

  /// Bytes queued and not yet written.
  public var pendingByteCount: Int { bytes.count - start }
  public var isEmpty: Bool { start == bytes.count }

  /// The bytes to write next, oldest first.
  public var pending: ArraySlice<UInt8> { bytes[start...] }

  public mutating func append(_ frame: some Collection<UInt8>) {
    bytes.append(contentsOf: frame)
  }

  /// Drops the first `count` pending bytes: the socket took them.
  public mutating func consume(_ count: Int) {
    precondition(count >= 0 && count <= pendingByteCount, "consumed more than was pending")
    start += count
    if start == bytes.count {
      bytes.removeAll(keepingCapacity: bytes.capacity <= Self.retainedCapacity)
      start = 0
    } else if start >= Self.compactionThreshold && start * 2 >= bytes.count {
      bytes.removeSubrange(..<start)
      start = 0
    }
  }

  /// How much storage the buffer holds, written prefix included (for tests of compaction).
  public var storedByteCount: Int { bytes.count }
}
