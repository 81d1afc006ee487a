import DaemonSupport
import Testing

/// A seeded generator (SplitMix64), so that a failing run can be repeated.
struct SeededRandom: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite struct BackoffTests {
  @Test func doublesUpToTheCapAndStartsOverAfterASuccess() {
    var backoff = Backoff(first: .milliseconds(100), cap: .milliseconds(500), jitter: 1.0...1.0)
    var random = SeededRandom(state: 1)
    let waits = (0..<5).map { _ in backoff.next(using: &random) }
    #expect(
      waits == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(500), .milliseconds(500)])
    backoff.reset()
    #expect(backoff.next(using: &random) == .milliseconds(100))
  }

  @Test func jitterScalesTheDelayWithinItsRange() {
    var backoff = Backoff(first: .milliseconds(100), cap: .seconds(10), jitter: 0.5...1.0)
    var random = SeededRandom(state: 1)
    var delay = Duration.milliseconds(100)
    for _ in 0..<10 {
      let wait = backoff.next(using: &random)
      #expect(wait >= delay * 0.5 && wait <= delay)
      delay = min(delay * 2, .seconds(10))
    }
  }
}
