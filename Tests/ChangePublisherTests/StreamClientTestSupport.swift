import ChangePublisher
import ChangeStream

let epochA: UInt64 = 0xA
let epochB: UInt64 = 0xB

/// A history in `epoch` holding events 1...`events` (the oldest beyond `capacity` or `byteBudget` gone).
func makeHistory(
  epoch: UInt64? = epochA, events: Int = 0, capacity: Int = 100, byteBudget: Int = 1 << 30, payloadSize: Int = 10
) -> ChangeHistory {
  var history = ChangeHistory(ringCapacity: capacity, ringByteBudget: byteBudget)
  guard let epoch else { return history }
  _ = history.startEpoch(epoch)
  appendEvents(events, to: &history, payloadSize: payloadSize)
  return history
}

@discardableResult
func appendEvents(_ count: Int, to history: inout ChangeHistory, payloadSize: Int = 10) -> [StoredEvent] {
  (0..<count).map { _ in history.append(payload: [UInt8](repeating: UInt8(ascii: "x"), count: payloadSize)) }
}

func helloBytes(resumeFrom: Cursor? = nil, history: UInt32 = 0, version: UInt16 = StreamFrame.protocolVersion)
  -> [UInt8]
{
  StreamFrame.hello(version: version, resumeFrom: resumeFrom, history: history).encoded
}

extension StreamClientStateMachine {
  /// Everything queued, as frames, as if the socket took it all.
  mutating func takeOutput() -> [StreamFrame] {
    var decoder = StreamFrameDecoder()
    decoder.feed(output.pending)
    wrote(output.pendingByteCount)
    var frames: [StreamFrame] = []
    while let frame = try! decoder.next() { frames.append(frame) }
    return frames
  }

  /// Lets a socket that takes everything drain the client until it has nothing more to send.
  mutating func drainCompletely(history: ChangeHistory) -> [StreamFrame] {
    var frames = takeOutput()
    while outputDrained(history: history) == .write { frames += takeOutput() }
    return frames
  }
}

/// The notify source's positions (their major parts) of the events among `frames`.
func eventSeqs(_ frames: [StreamFrame]) -> [UInt64] {
  frames.compactMap { frame in
    if case .event(let position, _) = frame { return position.major }
    return nil
  }
}

extension StoredEvent {
  /// An event of the notify source: the ring's number is its position.
  init(seq: UInt64, payload: [UInt8]) {
    self.init(seq: seq, position: StreamPosition(major: seq), payload: payload)
  }
}
