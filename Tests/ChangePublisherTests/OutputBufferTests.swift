import ChangePublisher
import Testing

@Suite struct OutputBufferTests {
  @Test func pendingBytesAreWhatWasAppendedAndNotConsumed() {
    var buffer = OutputBuffer()
    buffer.append([1, 2, 3])
    buffer.append([4, 5])
    buffer.consume(2)
    #expect(Array(buffer.pending) == [3, 4, 5])
    #expect(buffer.pendingByteCount == 3)
    buffer.consume(3)
    #expect(buffer.isEmpty)
    #expect(buffer.storedByteCount == 0)
  }

  @Test func aLargeWrittenPrefixIsReleasedBeforeTheBufferDrains() {
    var buffer = OutputBuffer()
    buffer.append((0..<100_000).map { UInt8(truncatingIfNeeded: $0) })
    buffer.consume(70_000)
    #expect(buffer.storedByteCount == 30_000)
    #expect(Array(buffer.pending) == (70_000..<100_000).map { UInt8(truncatingIfNeeded: $0) })
  }

  @Test func aSmallWrittenPrefixStaysUntilItIsWorthMoving() {
    var buffer = OutputBuffer()
    buffer.append([UInt8](repeating: 7, count: 300_000))
    buffer.consume(OutputBuffer.compactionThreshold - 1)
    #expect(buffer.storedByteCount == 300_000, "under the threshold")
    buffer.consume(40_000)
    #expect(buffer.storedByteCount == 300_000, "past the threshold, but under half the storage")
    buffer.consume(50_000)
    #expect(buffer.storedByteCount == buffer.pendingByteCount)
    #expect(buffer.pendingByteCount == 300_000 - OutputBuffer.compactionThreshold + 1 - 90_000)
  }

  @Test func aClientThatKeepsUpAlmostAlwaysHoldsLittleMoreThanItsBacklog() {
    // 1,000,000 frames of 1 KB (about 1 GB in all): the socket takes all of
    // each write 99 times in 100, and the rest of the time all but a frame.
    // The buffer never drains completely, yet what it stores stays within
    // the compaction threshold's reach of what is pending.
    var buffer = OutputBuffer()
    let frame = [UInt8](repeating: 0x5A, count: 1024)
    var largestStored = 0
    var largestPending = 0
    for round in 0..<1_000_000 {
      buffer.append(frame)
      let taken = round % 100 == 0 ? buffer.pendingByteCount - frame.count : buffer.pendingByteCount - 1
      buffer.consume(max(0, taken))
      largestStored = max(largestStored, buffer.storedByteCount)
      largestPending = max(largestPending, buffer.pendingByteCount)
    }
    #expect(largestPending < 64 * 1024, "it keeps up: the backlog stays small")
    #expect(
      largestStored <= 2 * (OutputBuffer.compactionThreshold + largestPending),
      "stored \(largestStored) bytes for at most \(largestPending) pending")
  }
}
