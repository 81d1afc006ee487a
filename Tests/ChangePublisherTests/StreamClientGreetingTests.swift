import ChangePublisher
import ChangeStream
import Testing

@Suite struct StreamClientGreetingTests {
  @Test func aFreshClientIsResetToTheHistoryItAskedFor() {
    let history = makeHistory(events: 10)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let action = client.received(helloBytes(history: 3), history: history)
    #expect(action == .greeted(from: Cursor(epoch: epochA, seq: 7), resumed: false))
    #expect(client.state == .catchingUp(next: 8))
    #expect(client.takeOutput() == [.welcome(version: 1, from: Cursor(epoch: epochA, seq: 7), resumed: false)])
    #expect(eventSeqs(client.drainCompletely(history: history)) == [8, 9, 10])
    #expect(client.state == .live)
  }

  @Test func aFreshClientWithoutHistoryStartsLiveAtTheNewest() {
    let history = makeHistory(events: 10)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(
      client.received(helloBytes(), history: history) == .greeted(from: Cursor(epoch: epochA, seq: 10), resumed: false))
    #expect(client.state == .live)
  }

  @Test func historyIsCappedAtWhatTheRingHolds() {
    let history = makeHistory(events: 10, capacity: 4)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let action = client.received(helloBytes(history: 100), history: history)
    #expect(action == .greeted(from: Cursor(epoch: epochA, seq: 6), resumed: false))
    #expect(eventSeqs(client.drainCompletely(history: history)) == [7, 8, 9, 10])
  }

  @Test func aCursorOfTheCurrentEpochThatTheRingCoversIsResumed() {
    let history = makeHistory(events: 10)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let action = client.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: 6), history: 2), history: history)
    #expect(action == .greeted(from: Cursor(epoch: epochA, seq: 6), resumed: true))
    #expect(client.state == .catchingUp(next: 7))
    #expect(eventSeqs(client.drainCompletely(history: history)) == [7, 8, 9, 10])
  }

  @Test func aCursorAtTheNewestIsResumedLive() {
    let history = makeHistory(events: 10)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let action = client.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: 10)), history: history)
    #expect(action == .greeted(from: Cursor(epoch: epochA, seq: 10), resumed: true))
    #expect(client.state == .live)
  }

  @Test func aCursorOfAnotherEpochIsReset() {
    let history = makeHistory(events: 10)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let action = client.received(helloBytes(resumeFrom: Cursor(epoch: epochB, seq: 6), history: 2), history: history)
    #expect(action == .greeted(from: Cursor(epoch: epochA, seq: 8), resumed: false))
  }

  @Test func aCursorOlderThanTheRingIsReset() {
    // The ring holds 6...10: everything after 5 is there, after 4 it is not.
    let history = makeHistory(events: 10, capacity: 5)
    var covered = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(
      covered.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: 5)), history: history)
        == .greeted(from: Cursor(epoch: epochA, seq: 5), resumed: true))
    var tooOld = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(
      tooOld.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: 4), history: 1), history: history)
        == .greeted(from: Cursor(epoch: epochA, seq: 9), resumed: false))
  }

  @Test func aCursorOlderThanTheRingsByteBudgetKeepsIsReset() {
    // Room for about five events of this size, whatever the count capacity. About: an
    // event's bytes are its frame's allocation, which malloc may round up differently
    // (CI once held four), so the test reads what the ring kept rather than assuming it.
    let eventBytes = StoredEvent(seq: 1, payload: [UInt8](repeating: 0, count: 10)).storedBytes
    let history = makeHistory(events: 10, capacity: 100, byteBudget: 5 * eventBytes + eventBytes / 2)
    let held = UInt64(history.ring.count)
    #expect(held >= 1 && held < 10, "the byte budget, not the count capacity, bounds the ring")
    #expect(history.ring.byteCount <= 5 * eventBytes + eventBytes / 2)
    let oldestCovered = 10 - held  // everything after it is held
    var covered = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(
      covered.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: oldestCovered)), history: history)
        == .greeted(from: Cursor(epoch: epochA, seq: oldestCovered), resumed: true))
    var tooOld = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(
      tooOld.received(
        helloBytes(resumeFrom: Cursor(epoch: epochA, seq: oldestCovered - 1), history: 10), history: history)
        == .greeted(from: Cursor(epoch: epochA, seq: oldestCovered), resumed: false))
  }

  @Test func aCursorFromTheFutureIsReset() {
    let history = makeHistory(events: 10)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(
      client.received(helloBytes(resumeFrom: Cursor(epoch: epochA, seq: 11)), history: history)
        == .greeted(from: Cursor(epoch: epochA, seq: 10), resumed: false))
  }

  @Test func aHelloBeforeAnyEpochWaitsForTheFirst() {
    var history = makeHistory(epoch: nil)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let cursor = Cursor(epoch: epochB, seq: 3)
    #expect(client.received(helloBytes(resumeFrom: cursor, history: 5), history: history) == .none)
    #expect(client.state == .helloPending(.init(resumeFrom: cursor, history: 5)))
    #expect(client.output.isEmpty)
    #expect(!client.wantsToWrite)

    _ = history.startEpoch(epochA)
    #expect(client.epochStarted(history: history) == .greeted(from: Cursor(epoch: epochA, seq: 0), resumed: false))
    #expect(client.state == .live)
    #expect(client.takeOutput() == [.welcome(version: 1, from: Cursor(epoch: epochA, seq: 0), resumed: false)])
  }

  @Test func aHelloSplitAcrossReadsIsAnsweredWhenComplete() {
    let history = makeHistory(events: 2)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    let hello = helloBytes(history: 1)
    #expect(client.received(hello.prefix(5), history: history) == .none)
    #expect(client.state == .awaitingHello)
    #expect(
      client.received(hello.dropFirst(5), history: history)
        == .greeted(from: Cursor(epoch: epochA, seq: 1), resumed: false))
  }

  @Test func beforeItsHelloAClientGetsNothing() {
    var history = makeHistory(events: 2)
    var client = StreamClientStateMachine(bufferLimit: 1 << 20)
    #expect(client.eventsAppended(appendEvents(1, to: &history)) == .none)
    _ = history.startEpoch(epochB)
    #expect(client.epochStarted(history: history) == .none)
    #expect(client.outputDrained(history: history) == .none)
    #expect(client.state == .awaitingHello)
    #expect(client.output.isEmpty)
  }
}
