import Testing
import WALStream

// What a walsender sends, as the state machine receives it.
private func wal(_ message: PgOutputMessage) -> ReplicationMessage {
  .xLogData(
    XLogData(walStart: .zero, walEnd: .zero, serverClock: .init(microsecondsSince2000: 0), data: message.encoded()[...])
  )
}
private func begin(_ commit: UInt64) -> ReplicationMessage {
  wal(.begin(finalLSN: LSN(commit), commitTime: .init(microsecondsSince2000: 0), xid: 1))
}
private func commit(_ commit: UInt64, end: UInt64) -> ReplicationMessage {
  wal(.commit(flags: 0, commitLSN: LSN(commit), endLSN: LSN(end), commitTime: .init(microsecondsSince2000: 0)))
}
private func message(_ text: String, prefix: String = "pbp", transactional: Bool = true, at lsn: UInt64 = 1)
  -> ReplicationMessage
{
  wal(
    .message(
      LogicalMessage(
        flags: transactional ? 1 : 0, lsn: LSN(lsn), prefix: Array(prefix.utf8), content: Array(text.utf8)[...])))
}
private func keepalive(_ end: UInt64, reply: Bool = false) -> ReplicationMessage {
  .primaryKeepalive(
    PrimaryKeepalive(walEnd: LSN(end), serverClock: .init(microsecondsSince2000: 0), replyRequested: reply))
}
private let clock = PostgresTimestamp(microsecondsSince2000: 42)

/// The status update due at `now`, if any, when the ring needs nothing.
private func due(_ machine: inout WALStreamStateMachine, at now: Duration) -> StandbyStatusUpdate? {
  machine.statusUpdate(confirmable: .max, clock: clock, now: now)
}

/// Feeds messages in order; returns the events as "commit:index=content".
private func feed(_ machine: inout WALStreamStateMachine, _ messages: [ReplicationMessage], now: Duration = .zero)
  throws(WALStreamError) -> [String]
{
  var seen: [String] = []
  for message in messages {
    if let event = try machine.received(message, now: now) {
      seen.append(
        "\(event.position.commitLSN.rawValue):\(event.position.index)=\(String(decoding: event.content, as: UTF8.self))"
      )
    }
  }
  return seen
}

@Suite struct WALStreamOrderingTests {
  @Test func eventsArriveInCommitOrderStampedWithTheirCommitAndIndex() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    let events = try feed(
      &machine,
      [
        begin(100), message("a"), message("b"), commit(100, end: 110),
        begin(200), message("c"), commit(200, end: 210),
      ])
    #expect(events == ["100:0=a", "100:1=b", "200:0=c"])
    #expect(machine.state == .betweenTransactions)
    #expect(machine.deliveredThrough == LSN(210))
  }

  @Test func onlyTransactionalMessagesWithThePBPPrefixCount() throws {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    let events = try feed(
      &machine,
      [
        message("loose", transactional: false),
        begin(100), message("other", prefix: "pbpx"), message("x", prefix: "pb"), message("a"),
        message("loose inside", transactional: false), message("b"), commit(100, end: 110),
      ])
    #expect(events == ["100:0=a", "100:1=b"], "indexes count only the events that are delivered")
  }

  @Test func rowChangesAndOriginsInsideATransactionAreSkipped() throws {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    let events = try feed(
      &machine,
      [
        begin(100), wal(.skipped(.origin)), wal(.skipped(.relation)), wal(.skipped(.insert)), message("a"),
        commit(100, end: 110),
      ])
    #expect(events == ["100:0=a"])
  }

  @Test func theEventsContentIsItsOwnCopyOfThePayload() throws {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    _ = try machine.received(begin(100), now: .zero)
    let received = try machine.received(message("payload", at: 77), now: .zero)
    let event = try #require(received)
    #expect(event.content == Array("payload".utf8))
    #expect(event.messageLSN == LSN(77))
  }
}

@Suite struct WALStreamOddInputTests {
  @Test func aCommitThatNamesAnotherLSNThanItsBeginIsAnError() throws {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), message("a")])
    #expect(throws: WALStreamError.commitMismatch(begin: LSN(100), commit: LSN(101))) {
      try machine.received(commit(101, end: 120), now: .zero)
    }
  }

  @Test func aBeginInsideATransactionIsAnError() throws {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    _ = try machine.received(begin(100), now: .zero)
    #expect(throws: WALStreamError.beginInsideTransaction(open: LSN(100), begun: LSN(200))) {
      try machine.received(begin(200), now: .zero)
    }
  }

  @Test func aCommitWithoutABeginIsAnError() {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    #expect(throws: WALStreamError.commitWithoutBegin(commitLSN: LSN(100))) {
      try machine.received(commit(100, end: 110), now: .zero)
    }
  }

  @Test func aTransactionalMessageOutsideATransactionIsAnError() {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    #expect(throws: WALStreamError.transactionalMessageOutsideTransaction(lsn: LSN(9))) {
      try machine.received(message("a", at: 9), now: .zero)
    }
  }

  @Test func aTransactionThatCommitsBeforeWhatWasDeliveredIsAnError() throws {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), commit(100, end: 110)])
    #expect(throws: WALStreamError.commitOrderViolated(deliveredThrough: LSN(110), begun: LSN(105))) {
      try machine.received(begin(105), now: .zero)
    }
  }

  @Test func aPayloadThatIsNotPgOutputIsAnError() {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    let garbage = ReplicationMessage.xLogData(
      XLogData(walStart: .zero, walEnd: .zero, serverClock: .init(microsecondsSince2000: 0), data: [0x5A, 1][...]))
    #expect(throws: WALStreamError.malformed(.unknownType(0x5A, in: "pgoutput message"))) {
      try machine.received(garbage, now: .zero)
    }
  }

  @Test func aTransactionWithNoEventsStillMovesTheDeliveredPosition() throws {
    var machine = WALStreamStateMachine(startingAt: .zero, alreadyStamped: nil, now: .zero)
    let events = try feed(&machine, [begin(100), message("x", prefix: "other"), commit(100, end: 110)])
    #expect(events.isEmpty)
    #expect(machine.deliveredThrough == LSN(110))
  }
}

@Suite struct WALStreamRestartTests {
  @Test func afterARestartWhatWasAlreadyStampedIsDroppedAndTheRestFollows() throws {
    // The slot confirmed 100 (the ring still needed transaction 100), the
    // reader had stamped up to 200:0 before it died: 100 and 200 come again.
    var machine = WALStreamStateMachine(
      startingAt: LSN(100), alreadyStamped: WALPosition(commitLSN: LSN(200), index: 0), now: .zero)
    let events = try feed(
      &machine,
      [
        begin(100), message("a"), message("b"), commit(100, end: 110),
        begin(200), message("c"), message("d"), commit(200, end: 210),
        begin(300), message("e"), commit(300, end: 310),
      ])
    #expect(events == ["200:1=d", "300:0=e"])
    #expect(machine.duplicatesSkipped == 3)
  }

  @Test func aReaderThatStampedNothingDropsNothing() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(100), alreadyStamped: nil, now: .zero)
    let events = try feed(&machine, [begin(100), message("a"), commit(100, end: 110)])
    #expect(events == ["100:0=a"])
    #expect(machine.duplicatesSkipped == 0)
  }

  @Test func aTransactionCutOffMidwayIsResumedAtTheEventAfterTheLastStamped() throws {
    var first = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    let before = try feed(&first, [begin(100), message("a"), message("b")])
    #expect(before == ["100:0=a", "100:1=b"])
    // The connection broke before the Commit; nothing was confirmed past 50.
    var second = WALStreamStateMachine(
      startingAt: LSN(50), alreadyStamped: WALPosition(commitLSN: LSN(100), index: 1), now: .zero)
    let after = try feed(&second, [begin(100), message("a"), message("b"), message("c"), commit(100, end: 110)])
    #expect(after == ["100:2=c"])
  }
}

@Suite struct WALStreamStatusScheduleTests {
  @Test func aKeepaliveAskingForAReplyIsAnsweredAtOnce() throws {
    var machine = WALStreamStateMachine(
      startingAt: LSN(50), alreadyStamped: nil, statusInterval: .seconds(10), now: .zero)
    let early = due(&machine, at: .seconds(1))
    #expect(early == nil)
    _ = try machine.received(keepalive(60, reply: true), now: .seconds(1))
    #expect(machine.nextStatusDeadline == .seconds(1))
    let answer = due(&machine, at: .seconds(1))
    let update = try #require(answer)
    #expect(
      update == StandbyStatusUpdate(write: LSN(60), flush: LSN(60), apply: LSN(60), clock: clock, replyRequested: false)
    )
    #expect(due(&machine, at: .seconds(2)) == nil, "answered once")
  }

  /// What lets PostgreSQL shut down while the ring holds the slot back.
  @Test func aReplyWhileTheRingHoldsTheFlushBackReportsNoFlushAndMovesNothing() throws {
    var machine = WALStreamStateMachine(
      startingAt: LSN(50), alreadyStamped: nil, statusInterval: .seconds(10), now: .zero)
    _ = try feed(&machine, [begin(100), message("a"), commit(100, end: 110)])
    _ = try machine.received(keepalive(120, reply: true), now: .seconds(1))
    let answer = machine.statusUpdate(confirmable: LSN(100), clock: clock, now: .seconds(1))
    let reply = try #require(answer)
    #expect(
      reply == StandbyStatusUpdate(write: LSN(120), flush: .zero, apply: .zero, clock: clock, replyRequested: false))
    #expect(machine.confirmedFlush == LSN(50), "the slot stays where it was")
    #expect(machine.statusUpdate(confirmable: LSN(100), clock: clock, now: .seconds(2)) == nil, "answered once")
    let later = machine.statusUpdate(confirmable: LSN(100), clock: clock, now: .seconds(10))
    let scheduled = try #require(later)
    #expect(scheduled.flush == LSN(100) && machine.confirmedFlush == LSN(100), "the schedule still confirms")
  }

  @Test func otherwiseAnUpdateGoesOutEveryInterval() throws {
    var machine = WALStreamStateMachine(
      startingAt: LSN(50), alreadyStamped: nil, statusInterval: .seconds(10), now: .zero)
    #expect(machine.nextStatusDeadline == .seconds(10))
    #expect(due(&machine, at: .seconds(9)) == nil)
    #expect(due(&machine, at: .seconds(10)) != nil)
    #expect(machine.nextStatusDeadline == .seconds(20))
    #expect(due(&machine, at: .seconds(15)) == nil)
    _ = try machine.received(keepalive(70), now: .seconds(16))
    #expect(due(&machine, at: .seconds(16)) == nil, "no reply was asked for")
    #expect(due(&machine, at: .seconds(21))?.flush == LSN(70))
  }

  @Test func aFinalUpdateGoesOutWhenAskedWhateverTheSchedule() throws {
    var machine = WALStreamStateMachine(
      startingAt: LSN(50), alreadyStamped: nil, statusInterval: .seconds(10), now: .zero)
    _ = try feed(&machine, [begin(100), message("a"), commit(100, end: 110)])
    let update = machine.finalStatusUpdate(confirmable: .max, clock: clock, now: .seconds(1))
    #expect(update.flush == LSN(110))
    #expect(machine.nextStatusDeadline == .seconds(11))
  }
}

@Suite struct WALStreamConfirmRuleTests {
  private func flush(_ machine: inout WALStreamStateMachine, confirmable: LSN) -> LSN {
    machine.finalStatusUpdate(confirmable: confirmable, clock: clock, now: .zero).flush
  }

  @Test func nothingBelowTheSlotsOwnPositionIsEverReported() {
    var machine = WALStreamStateMachine(startingAt: LSN(500), alreadyStamped: nil, now: .zero)
    #expect(flush(&machine, confirmable: LSN(10)) == LSN(500), "the slot never goes back")
    #expect(flush(&machine, confirmable: .max) == LSN(500))
  }

  @Test func theFlushStopsAtWhatTheRingStillNeeds() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    _ = try feed(
      &machine, [begin(100), message("a"), commit(100, end: 110), begin(200), message("b"), commit(200, end: 210)])
    // The ring still holds 200:0: confirming its commit LSN makes the slot send
    // that transaction again (a transaction is skipped only when it commits
    // before the confirmed position), so nothing the ring holds is lost.
    #expect(flush(&machine, confirmable: LSN(200)) == LSN(200))
    #expect(flush(&machine, confirmable: .max) == LSN(210))
  }

  @Test func itNeverPassesWhatWasDeliveredEvenWhenTheRingNeedsNothing() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), message("a")])
    #expect(flush(&machine, confirmable: .max) == LSN(50), "transaction 100 is not whole yet")
    _ = try machine.received(commit(100, end: 110), now: .zero)
    #expect(flush(&machine, confirmable: .max) == LSN(110))
  }

  @Test func whateverTheCallerAllowsTheFlushStopsAtWhatWasDelivered() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), message("a"), commit(100, end: 110), begin(200), message("b")])
    #expect(flush(&machine, confirmable: LSN(1000)) == LSN(110), "transaction 200 has not committed in the stream yet")
  }

  @Test func keepalivesBetweenTransactionsLetTheSlotAdvanceWhileIdle() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), message("a"), commit(100, end: 110)])
    _ = try machine.received(keepalive(5000), now: .zero)
    #expect(machine.deliveredThrough == LSN(5000))
    #expect(flush(&machine, confirmable: .max) == LSN(5000))
    #expect(flush(&machine, confirmable: LSN(100)) == LSN(5000), "what was confirmed stays confirmed")
  }

  @Test func aKeepaliveInsideATransactionMovesNothing() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), message("a"), keepalive(90)])
    #expect(machine.deliveredThrough == LSN(50))
    #expect(flush(&machine, confirmable: .max) == LSN(50))
  }

  @Test func anOldKeepaliveDoesNotMoveTheDeliveredPositionBack() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), commit(100, end: 110), keepalive(60)])
    #expect(machine.deliveredThrough == LSN(110))
  }

  @Test func theWritePositionIsTheFurthestTheServerSaidItSent() throws {
    var machine = WALStreamStateMachine(startingAt: LSN(50), alreadyStamped: nil, now: .zero)
    _ = try feed(&machine, [begin(100), message("a"), keepalive(90)])
    let update = machine.finalStatusUpdate(confirmable: .max, clock: clock, now: .zero)
    #expect(update.write == LSN(90))
    #expect(update.flush == LSN(50))
    #expect(update.apply == LSN(50))
  }
}
