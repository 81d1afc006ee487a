import ChangeStream
import LongPoll

/// What a request's `Authorization` header makes of it: whom it acts for, or
/// why it is refused (401, 403). How tokens are verified is pbp-fcgi's
/// business (Sources/Identity); the API only acts on the verdict.
public enum AccessDecision: Sendable {
  case actAs(RequestIdentity)
  case refused(APIError)
}

/// Who a request acts for: decided afresh for every request, long-polls
/// included, so that a token that expired or no longer verifies stops
/// receiving within one poll.
extension APIApplication {
  func identity(of request: APIRequest) throws(APIError) -> RequestIdentity {
    switch decideAccess(request.headers["authorization"]) {
    case .actAs(let identity): return identity
    case .refused(let error): throw error
    }
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
    var claimValues: [String: String]? = nil  // read once, for the first table with a rule
    for subscription in poll.subscriptions {
      let table = try tableInfo(subscription.table, session)
      guard table.mayBeRead(by: identity.role) else {
        throw APIError(
          status: 403, code: "forbidden", message: "role \(identity.role) may not read \(table.name), nor its events")
      }
      var owner: OwnerCondition? = nil
      if let rule = table.rowRule {
        if claimValues == nil { claimValues = identity.claimValues }
        owner = OwnerCondition(column: rule.ownerColumn, value: claimValues?[rule.ownerClaim])
      }
      subscriptions.append(Subscription(table: subscription.table, filters: subscription.filters, owner: owner))
    }
    return ChangePoll(cursor: poll.cursor, subscriptions: subscriptions, timeout: poll.timeout)
  }
}
