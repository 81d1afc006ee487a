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
