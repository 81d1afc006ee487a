import FoundationEssentials
import JWTKit

/// pbp-fcgi's authentication settings, as its options give them, and their
/// loading into an `Authenticator`. Loading reads the key files once; a file
/// that is missing, unreadable or not a usable key is a `LoadError` naming it.
public struct AuthenticationConfiguration: Equatable, Sendable {
  /// A file holding the HS256 secret (see `KeyFile.secret(fromContents:)`).
  public var secretFile: String?
  /// A JWKS file (RFC 7517) of RS256 and ES256 public keys, each with a `kid`.
  public var jwksFile: String?
  public var audience: String?
  public var clockSkewSeconds: Double
  public var roles: RoleRules

  public static let maximumClockSkewSeconds: Double = 300

  public init(
    secretFile: String? = nil, jwksFile: String? = nil, audience: String? = nil, clockSkewSeconds: Double = 30,
    roles: RoleRules = RoleRules()
  ) {
    self.secretFile = secretFile
    self.jwksFile = jwksFile
    self.audience = audience
    self.clockSkewSeconds = clockSkewSeconds
    self.roles = roles
  }

  public struct LoadError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
  }

  /// Loads the keys. For a caller outside Swift concurrency (pbp-fcgi's
  /// startup), `loadBlocking()` waits for this on the calling thread.
  public func load() async -> Result<Authenticator, LoadError> {
    do throws(LoadError) {
      try validateSettings()
      let secret = try secretFile.map { path throws(LoadError) in try Self.readSecret(path) }
      let jwks = try jwksFile.map { path throws(LoadError) in try Self.readJWKS(path) }
      let made: (keys: VerificationKeys, skipped: [VerificationKeys.SkippedKey])
      do {
        made = try await VerificationKeys.make(secret: secret, jwks: jwks)
      } catch {
        let source = [secretFile, jwksFile].compactMap { $0 }.joined(separator: ", ")
        throw LoadError("\(source): \(error.description)")
      }
      let policy = TokenVerifier.Policy(audience: audience, clockSkewSeconds: clockSkewSeconds)
      return .success(
        Authenticator(
          verifier: TokenVerifier(keys: made.keys, policy: policy, cache: VerifiedTokenCache()), rules: roles,
          skippedKeys: made.skipped)
      )
    } catch {
      return .failure(error)
    }
  }

  /// `load()`, waited for on this thread. Only from a thread that is not
  /// running a Swift task (see `waitForAsync`).
  public func loadBlocking() -> Result<Authenticator, LoadError> {
    let configuration = self
    return waitForAsync { await configuration.load() }
  }

  private func validateSettings() throws(LoadError) {
    guard clockSkewSeconds.isFinite, clockSkewSeconds >= 0, clockSkewSeconds <= Self.maximumClockSkewSeconds else {
      throw LoadError(
        "the clock skew must be between 0 and \(Int(Self.maximumClockSkewSeconds)) seconds, not \(clockSkewSeconds)")
    }
    if audience == "" { throw LoadError("the audience is empty") }
    for (name, role) in [("anonymous role", roles.anonymousRole), ("default token role", roles.defaultTokenRole)] {
      if role == "" { throw LoadError("the \(name) is empty") }
    }
    if let allowed = roles.allowedTokenRoles {
      if allowed.contains("") { throw LoadError("the roles tokens may name include an empty one") }
      if let role = roles.defaultTokenRole, !allowed.contains(role) {
        throw LoadError("the default token role \(role) is not among the roles tokens may name")
      }
    }
  }

  private static func readSecret(_ path: String) throws(LoadError) -> [UInt8] {
    let contents: [UInt8]
    do {
      contents = try KeyFile.read(path)
    } catch {
      throw LoadError("the HS256 key file: \(error.description)")
    }
    return KeyFile.secret(fromContents: contents)
  }

  private static func readJWKS(_ path: String) throws(LoadError) -> JWKS {
    let contents: [UInt8]
    do {
      contents = try KeyFile.read(path)
    } catch {
      throw LoadError("the JWKS file: \(error.description)")
    }
    do {
      return try JSONDecoder().decode(JWKS.self, from: Data(contents))
    } catch {
      throw LoadError("\(path) is not a JWKS (a JSON object with an array of keys): \(error)")
    }
  }
}

/// The loaded settings: what decides, for each request, who it acts as.
public struct Authenticator: Sendable {
  public let verifier: TokenVerifier
  public let rules: RoleRules
  /// JWKS keys that were not taken (no `kid`, or not RS256/ES256): worth a line in the log.
  public let skippedKeys: [VerificationKeys.SkippedKey]

  public init(verifier: TokenVerifier, rules: RoleRules, skippedKeys: [VerificationKeys.SkippedKey] = []) {
    self.verifier = verifier
    self.rules = rules
    self.skippedKeys = skippedKeys
  }

  /// The decision for a request with this `Authorization` header (nil: none), at `now`.
  /// Synchronous and safe from any thread (see `TokenVerifier`).
  public func decide(authorizationHeader: String?, at now: UnixTime) -> RoleDecision {
    RoleDecision.decide(
      BearerCredential(authorizationHeader: authorizationHeader), verifier: verifier, rules: rules, at: now)
  }
}
