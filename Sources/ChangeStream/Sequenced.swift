/// Something a ring keeps: numbered consecutively in that ring (`seq`, the
/// ring's own count, which lets it size and evict by arithmetic) and placed
/// in the stream (`position`, ordered but not consecutive, what cursors name).
public protocol Sequenced {
  var seq: UInt64 { get }
  var position: StreamPosition { get }
}

extension RandomAccessCollection where Element: Sequenced {
  /// The index of the first element whose position is after `position`
  /// (binary search: positions increase along a ring).
  public func firstIndex(after position: StreamPosition) -> Index {
    var low = startIndex
    var count = self.count
    while count > 0 {
      let half = count / 2
      let middle = index(low, offsetBy: half)
      if self[middle].position <= position {
        low = index(after: middle)
        count -= half + 1
      } else {
        count = half
      }
    }
    return low
  }
}
