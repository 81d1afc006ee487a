import PostgresClient
import Testing

@testable import PBPAPI

@Suite struct DatabaseFailureTests {
  func answer(_ state: String) -> APIError {
    APIError(databaseFailure: PostgresError.server(sqlState: state, message: "says the server", detail: nil))
  }

  /// A deadlock, a serialization failure or a lock that could not be taken in
  /// time is the database asking to try again: 503 with Retry-After, never a 500.
  @Test func retryableFailuresAre503WithRetryAfter() {
    for state in ["40P01", "40001", "55P03"] {
      let error = answer(state)
      #expect(error.status == 503, "\(state)")
      #expect(error.code == "retry", "\(state)")
      #expect(error.extraHeaders.contains { $0.name == "Retry-After" && $0.value == "1" }, "\(state)")
      #expect(!error.message.isEmpty)
    }
  }

  @Test func otherStatesKeepTheirAnswers() {
    #expect(answer("23505").status == 409)
    #expect(answer("42501").status == 403)
    #expect(answer("57014").status == 503)
    #expect(answer("XX000").status == 500)
  }
}
