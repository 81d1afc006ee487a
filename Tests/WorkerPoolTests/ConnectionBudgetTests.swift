import Testing
import WorkerPool

@Suite struct ConnectionBudgetTests {
  @Test func twiceThePoolAndNotifydMustFitWhatOrdinaryRolesMayUse() {
    // Debian's defaults: 100 connections, 3 reserved for superusers.
    let debian = ConnectionBudget(maxConnections: 100, reservedConnections: 3)
    #expect(debian.refusal(workers: 4, threads: 11) == nil, "4 × (11 + 1) × 2 + 1 = 97")
    let refusal = debian.refusal(workers: 4, threads: 12)
    #expect(refusal?.contains("104 database connections") == true, "4 × (12 + 1) × 2 = 104: the catalog's counts")
    #expect(refusal?.contains("allows 97") == true)
    #expect(refusal?.contains("max_connections 100") == true)
  }

  @Test func theRolesOwnConnectionLimitCountsToo() {
    let limited = ConnectionBudget(maxConnections: 300, reservedConnections: 3, roleConnectionLimit: 20)
    #expect(limited.refusal(workers: 2, threads: 4) == nil, "2 × (4 + 1) × 2 = 20")
    #expect(limited.refusal(workers: 2, threads: 5)?.contains("CONNECTION LIMIT 20") == true)
  }
}

@Suite struct ConnectionBudgetOfSeveralHostsTests {
  @Test func connectionsOtherHostsHoldNowCountAgainstWhatIsLeft() {
    // Two hosts' pools of 2 × (4 + 1) are open (20) plus their notifyd's
    // LISTEN connections (2): a third host's pool, doubled in a reload, is 20.
    let third = ConnectionBudget(maxConnections: 50, reservedConnections: 3, heldByOthers: 22)
    #expect(third.refusal(workers: 2, threads: 4) == nil, "20 + 1 + 22 = 43 of 47")
    let refusal = third.refusal(workers: 2, threads: 6)
    #expect(refusal?.contains("28 database connections") == true, "2 × (6 + 1) × 2")
    #expect(refusal?.contains("22 held now by other sessions") == true, "names what the others hold")
    #expect(refusal?.contains("allows 47") == true)
  }

  @Test func theRolesLimitIsSharedByEveryHostThatLogsInAsIt() {
    let shared = ConnectionBudget(
      maxConnections: 300, reservedConnections: 3, roleConnectionLimit: 40, heldByOthers: 25, heldByRole: 20)
    #expect(shared.refusal(workers: 2, threads: 4) == nil, "20 + 20 of 40")
    let refusal = shared.refusal(workers: 2, threads: 5)
    #expect(refusal?.contains("CONNECTION LIMIT 40") == true)
    #expect(refusal?.contains("20 of which other sessions of the role hold now") == true)
  }
}
