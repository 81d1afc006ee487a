import ChangeStream
import Identity
import LongPoll

/// Who a request acts for: decided afresh for every request, long-polls
/// included, so that a token that expired or no longer verifies stops
/// receiving within one poll.
extension APIApplication {
  func identity(of request: APIRequest) throws(APIError) -> RequestIdentity {
    let decision = authenticator.decide(authorizationHeader: request.headers["authorization"], at: .now())
    switch decision {
    case .actAs(let role, let subject, let claims):
      return RequestIdentity(role: role, subject: subject, claims: claims)
    case .unauthorized:
      throw Self.refusal(decision, "this API needs a token: send Authorization: Bearer <token>")
    case .invalidToken(let reason):
      throw Self.refusal(decision, "the token is not valid: \(reason)")
    case .forbidden(let reason):
      throw Self.refusal(decision, reason)
    }
  }

  private static func refusal(_ decision: RoleDecision, _ message: String) -> APIError {
    var error = APIError(status: decision.status ?? 401, code: decision.errorCode ?? "unauthorized", message: message)
    if let challenge = decision.wwwAuthenticate {
      error.extraHeaders = [HeaderField(name: "WWW-Authenticate", value: challenge)]
    }
    return error
  }

  /// The poll as its identity may have it: a subscription on a table its
  /// role may not read is refused, and one on a table with a row rule is
  /// given the rule as it applies to this viewer (the owner column must hold
  /// their claim), so that the worker judges the table's events as
  /// PostgreSQL judges its rows.
  func authorized(_ poll: ChangePoll, identity: RequestIdentity, session: DatabaseSession) throws(APIError)
    -> ChangePoll
  {
    var subscriptions: [Subscription] = []
    for subscription in poll.subscriptions {
      let table = try tableInfo(subscription.table, session)
      guard table.mayBeRead(by: identity.role) else {
        throw APIError(
          status: 403, code: "forbidden", message: "role \(identity.role) may not read \(table.name), nor its events")
      }
      let owner = table.rowRule.map { rule in
        OwnerCondition(column: rule.ownerColumn, value: identity.claimValues[rule.ownerClaim])
      }
      subscriptions.append(Subscription(table: subscription.table, filters: subscription.filters, owner: owner))
    }
    return ChangePoll(cursor: poll.cursor, subscriptions: subscriptions, timeout: poll.timeout)
  }
}
