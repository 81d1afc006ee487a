import ChangePublisher
import ChangeStream
import Testing

@Suite struct StreamClientReplayTests {
  /// 1,000 events of about 1 kB: four chunks of catch-up.
  let history = makeHistory(events: 1000, capacity: 1000, payloadSize: 1000)
  var frameSize: Int { history.ring.element(withSeq: 1)!.frame.count }

  @Test func catchUpIsQueuedOnlyOnceTheSocketHasTakenEverything() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 30)
    _ = client.received(helloBytes(history: 1000), history: history)
    let welcomeSize = client.output.pendingByteCount
    #expect(client.outputDrained(history: history) == .none, "the WELCOME is still unwritten")
    #expect(client.output.pendingByteCount == welcomeSize)
    #expect(client.wantsToWrite)

    client.wrote(welcomeSize)
    #expect(client.outputDrained(history: history) == .write)
    let chunk = client.output.pendingByteCount
    #expect(chunk >= StreamClientStateMachine.catchUpChunk)
    #expect(chunk < StreamClientStateMachine.catchUpChunk + frameSize)
    #expect(client.state == .catchingUp(next: UInt64(chunk / frameSize) + 1))

    client.wrote(chunk - 1)
    #expect(client.outputDrained(history: history) == .none, "one byte is still unwritten")
    #expect(client.output.pendingByteCount == 1)
  }

  @Test func catchUpSendsEveryEventOnceInOrderThenGoesLive() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 30)
    _ = client.received(helloBytes(history: 1000), history: history)
    var chunks = 0
    var frames = client.takeOutput()
    while client.outputDrained(history: history) == .write {
      #expect(client.output.pendingByteCount < StreamClientStateMachine.catchUpChunk + frameSize)
      chunks += 1
      frames += client.takeOutput()
    }
    #expect(chunks == 4)
    #expect(eventSeqs(frames) == Array(1...1000))
    #expect(client.state == .live)
    #expect(!client.wantsToWrite)
  }

  @Test func eventsAppendedDuringCatchUpComeFromTheRing() {
    var history = history
    var client = StreamClientStateMachine(bufferLimit: 1 << 30)
    _ = client.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: 998)), history: history)
    let queued = client.output.pendingByteCount
    #expect(client.eventsAppended(appendEvents(2, to: &history)) == .none)
    #expect(client.output.pendingByteCount == queued, "not queued twice")
    #expect(eventSeqs(client.drainCompletely(history: history)) == [999, 1000, 1001, 1002])
    #expect(client.state == .live)
  }

  @Test func catchUpNeverCountsAgainstTheBufferLimit() {
    var client = StreamClientStateMachine(bufferLimit: 4096)
    _ = client.received(helloBytes(history: 1000), history: history)
    _ = client.takeOutput()
    #expect(client.outputDrained(history: history) == .write)
    #expect(client.output.pendingByteCount > 4096)
    #expect(client.state == .catchingUp(next: UInt64(client.output.pendingByteCount / frameSize) + 1))
  }

  @Test func catchUpThatTheRingHasMovedPastIsDropped() {
    var history = makeHistory(events: 4, capacity: 4)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    _ = client.received(helloBytes(history: 4), history: history)
    #expect(client.state == .catchingUp(next: 1))
    appendEvents(4, to: &history)  // the ring now holds 5...8
    _ = client.takeOutput()
    #expect(client.outputDrained(history: history) == .drop(.overtakenByRing))
    #expect(client.state == .dropped(.overtakenByRing))
  }
}

@Suite struct StreamClientLiveTests {
  func liveClient(bufferLimit: Int, history: ChangeHistory) -> StreamClientStateMachine {
    var client = StreamClientStateMachine(bufferLimit: bufferLimit)
    _ = client.received(helloBytes(), history: history)
    _ = client.takeOutput()
    return client
  }

  @Test func aLiveClientGetsEachNewEvent() {
    var history = makeHistory(events: 3)
    var client = liveClient(bufferLimit: 1 << 20, history: history)
    #expect(client.eventsAppended(appendEvents(2, to: &history)) == .write)
    #expect(eventSeqs(client.takeOutput()) == [4, 5])
  }

  @Test func aLiveClientThatFallsBehindTheLimitIsDropped() {
    var history = makeHistory(events: 0, payloadSize: 100)
    let frameSize = StoredEvent(seq: 1, payload: [UInt8](repeating: 0, count: 100)).frame.count
    var client = liveClient(bufferLimit: 3 * frameSize, history: history)
    #expect(client.eventsAppended(appendEvents(3, to: &history, payloadSize: 100)) == .write, "at the limit")
    let action = client.eventsAppended(appendEvents(1, to: &history, payloadSize: 100))
    #expect(action == .drop(.fellBehind(pendingBytes: 4 * frameSize)))
    #expect(client.state == .dropped(.fellBehind(pendingBytes: 4 * frameSize)))
  }

  @Test func whatTheSocketTookNoLongerCountsAgainstTheLimit() {
    var history = makeHistory(events: 0, payloadSize: 100)
    let frameSize = StoredEvent(seq: 1, payload: [UInt8](repeating: 0, count: 100)).frame.count
    var client = liveClient(bufferLimit: 3 * frameSize, history: history)
    _ = client.eventsAppended(appendEvents(3, to: &history, payloadSize: 100))
    client.wrote(frameSize)
    #expect(client.eventsAppended(appendEvents(1, to: &history, payloadSize: 100)) == .write)
  }
}

@Suite struct StreamClientEpochTests {
  @Test func aLiveClientIsToldOfANewEpoch() {
    var history = makeHistory(events: 3)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    _ = client.received(helloBytes(), history: history)
    _ = client.takeOutput()
    _ = history.startEpoch(epochB)
    #expect(client.epochStarted(history: history) == .write)
    #expect(client.takeOutput() == [.newEpoch(Cursor(epoch: epochB, seq: 0))])
    #expect(client.state == .live)
    #expect(client.eventsAppended(appendEvents(1, to: &history)) == .write)
    #expect(eventSeqs(client.takeOutput()) == [1])
  }

  @Test func aNewEpochAbandonsCatchUp() {
    var history = makeHistory(events: 1000, capacity: 1000, payloadSize: 1000)
    let frameSize = history.ring.element(withSeq: 1)!.frame.count
    var client = StreamClientStateMachine(bufferLimit: 1 << 30)
    _ = client.received(helloBytes(history: 1000), history: history)
    _ = client.takeOutput()
    _ = client.outputDrained(history: history)
    let oldEpochFrames = client.output.pendingByteCount
    _ = history.startEpoch(epochB)
    #expect(client.epochStarted(history: history) == .write)
    #expect(client.state == .live)
    let frames = client.drainCompletely(history: history)
    #expect(frames.last == .newEpoch(Cursor(epoch: epochB, seq: 0)), "what was queued goes first, nothing after")
    #expect(eventSeqs(frames) == Array(1...UInt64(oldEpochFrames / frameSize)), "only the chunk already queued")
  }

  @Test func aPendingHelloIsAnsweredByTheNewEpoch() {
    var history = makeHistory(epoch: nil)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    _ = client.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: 0)), history: history)
    _ = history.startEpoch(epochB)
    #expect(client.epochStarted(history: history) == .greeted(from: Cursor(epoch: epochB, seq: 0), resumed: false))
    #expect(
      client.takeOutput() == [
        .welcome(version: StreamFrame.protocolVersion, from: Cursor(epoch: epochB, seq: 0), resumed: false)
      ])
  }
}

@Suite struct StreamClientProtocolErrorTests {
  let history = makeHistory(events: 3)

  @Test func aSecondHelloIsDropped() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    _ = client.received(helloBytes(), history: history)
    let hello = StreamFrame.hello(version: StreamFrame.protocolVersion, resumeFrom: nil, history: 0)
    #expect(client.received(hello.encoded, history: history) == .drop(.unexpectedFrame(hello)))
    #expect(client.state == .dropped(.unexpectedFrame(hello)))
  }

  @Test func aSecondHelloWhileTheFirstIsPendingIsDropped() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let noEpoch = makeHistory(epoch: nil)
    #expect(
      client.received(helloBytes() + helloBytes(), history: noEpoch)
        == .drop(.unexpectedFrame(.hello(version: StreamFrame.protocolVersion, resumeFrom: nil, history: 0))))
  }

  @Test func anotherVersionIsDropped() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(client.received(helloBytes(version: 1), history: history) == .drop(.unsupportedVersion(1)))
    #expect(client.output.isEmpty)
  }

  @Test func anyOtherFrameIsDropped() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let event = StreamFrame.event(position: StreamPosition(major: 1), payload: Array("{}".utf8))
    #expect(client.received(event.encoded, history: history) == .drop(.unexpectedFrame(event)))
  }

  @Test func bytesThatAreNoFrameAreDropped() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(client.received([0, 0, 0, 0], history: history) == .drop(.malformedInput(.emptyFrame)))
  }

  @Test func aDroppedClientStaysDropped() {
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    _ = client.received(helloBytes(version: 9), history: history)
    #expect(client.received(helloBytes(), history: history) == .drop(.unsupportedVersion(9)))
    #expect(client.epochStarted(history: history) == .none)
    #expect(client.state == .dropped(.unsupportedVersion(9)))
  }
}
