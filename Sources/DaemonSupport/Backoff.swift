/// Capped exponential backoff with jitter, as a value: each failure yields the
/// next wait, a success starts over. The random source is passed in, so that
/// tests see exact delays.
public struct Backoff: Sendable {
  public let first: Duration
  public let cap: Duration
  /// Each wait is the current delay times a factor drawn from this range.
  public let jitter: ClosedRange<Double>
  private var delay: Duration

  public init(first: Duration, cap: Duration, jitter: ClosedRange<Double>) {
    self.first = first
    self.cap = cap
    self.jitter = jitter
    delay = first
  }

  /// The wait after one more failure; the delay then doubles, up to the cap.
  public mutating func next(using random: inout some RandomNumberGenerator) -> Duration {
    let wait = delay * Double.random(in: jitter, using: &random)
    delay = min(delay * 2, cap)
    return wait
  }

  public mutating func next() -> Duration {
    var random = SystemRandomNumberGenerator()
    return next(using: &random)
  }

  /// A success: the next failure waits `first` again.
  public mutating func reset() { delay = first }
}
