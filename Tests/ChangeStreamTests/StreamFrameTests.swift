import ChangeStream
import Testing

@Suite struct StreamFrameTests {
  static let frames: [StreamFrame] = [
    .hello(version: 2, resumeFrom: nil, history: 0),
    .hello(version: 2, resumeFrom: nil, history: 16_384),
    .hello(version: 2, resumeFrom: Cursor(epoch: 7, seq: 9), history: 0),
    .hello(
      version: 2, resumeFrom: Cursor(epoch: 7, position: StreamPosition(major: 0x1_0000_0000, minor: 7)), history: 1),
    .welcome(version: 2, from: Cursor(epoch: 7, seq: 9), resumed: true),
    .event(position: StreamPosition(major: 10), payload: Array(#"{"table":"t"}"#.utf8)),
    .event(position: StreamPosition(major: .max, minor: .max), payload: []),
    .newEpoch(Cursor(epoch: 8, seq: 0)),
  ]

  @Test func roundTripsInOnePieceAndByteByByte() throws {
    var bytes: [UInt8] = []
    for frame in Self.frames { frame.encode(into: &bytes) }

    var whole = StreamFrameDecoder()
    whole.feed(bytes)
    var decoded: [StreamFrame] = []
    while let frame = try whole.next() { decoded.append(frame) }
    #expect(decoded == Self.frames)

    var trickle = StreamFrameDecoder()
    decoded = []
    for byte in bytes {
      trickle.feed([byte])
      while let frame = try trickle.next() { decoded.append(frame) }
    }
    #expect(decoded == Self.frames)
    #expect(trickle.pendingByteCount == 0)
  }

  @Test func aTruncatedFrameWaitsForTheRest() throws {
    let bytes = StreamFrame.event(position: StreamPosition(major: 1), payload: [1, 2, 3]).encoded
    var decoder = StreamFrameDecoder()
    decoder.feed(bytes.dropLast())
    #expect(try decoder.next() == nil)
    decoder.feed(bytes.suffix(1))
    #expect(try decoder.next() == .event(position: StreamPosition(major: 1), payload: [1, 2, 3]))
  }

  @Test(arguments: [
    [0, 0, 0, 0] as [UInt8],  // empty frame
    [0, 0, 0, 1, 99],  // unknown type
    [0, 0, 0, 2, 1, 0],  // hello too short
    [0, 0, 0, 4, 1, 0, 1, 2],  // hello with a bad cursor flag
    [0, 0, 0, 8, 1, 0, 1, 0, 0, 0, 0, 0],  // hello asking for no history explicitly
    [0, 0, 0, 6, 1, 0, 1, 0, 0, 1],  // hello with a truncated history count
    [0, 0, 0, 3, 3, 0, 0],  // event without its position
    [0, 0, 0, 9, 3, 0, 0, 0, 0, 0, 0, 0, 1],  // event with half a position
    [0, 0, 0, 21, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // new epoch 0
    [0x7F, 0xFF, 0xFF, 0xFF, 3],  // longer than any frame may be
  ])
  func garbageIsAnError(_ bytes: [UInt8]) {
    var decoder = StreamFrameDecoder()
    decoder.feed(bytes)
    #expect(throws: StreamFrameError.self) { _ = try decoder.next() }
  }
}
