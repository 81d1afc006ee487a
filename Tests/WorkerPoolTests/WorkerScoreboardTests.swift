import Testing
import WorkerPool

@Suite struct WorkerScoreboardTests {
  @Test func aWorkerReportsInItsSlotAndEveryMappingSeesIt() throws {
    let master = try WorkerScoreboard.create(slots: 3)
    let slot = try #require(master.reserveSlot())
    #expect(master.statuses().isEmpty, "a reserved slot is no worker yet")
    master.assign(slot, to: 4242)
    // The worker maps the same memory through the descriptor it inherits.
    let inWorker = try #require(WorkerScoreboard(inheritedFD: master.fd))
    #expect(inWorker.slotCount == 3)
    let own = ScoreboardSlot(scoreboard: inWorker, slot: slot)
    own.requestStarted()
    own.requestStarted()
    own.requestFinished()
    own.databaseConnections(changedBy: 2)
    own.publish(parkedPolls: 7, eventsDelivered: 9, epoch: 0xE1, positionMajor: 5, positionMinor: 3)
    #expect(!master.isAccepting(4242))
    own.acceptingStarted()
    #expect(master.isAccepting(4242))
    #expect(
      master.statuses() == [
        WorkerStatus(
          pid: 4242, busyThreads: 1, parkedPolls: 7, eventsDelivered: 9, requestsServed: 2, databaseConnections: 2,
          epoch: 0xE1, positionMajor: 5, positionMinor: 3)
      ])
    #expect(master.slot(of: 4242) == slot)
    master.clear(slot)
    #expect(master.statuses().isEmpty)
    #expect(!master.isAccepting(4242))
  }

  @Test func slotsRunOut() throws {
    let board = try WorkerScoreboard.create(slots: 2)
    #expect(board.reserveSlot() != nil)
    #expect(board.reserveSlot() != nil)
    #expect(board.reserveSlot() == nil)
  }
}
