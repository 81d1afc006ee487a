import ChangeStream

/// Decides which refused payloads are logged: anyone who can NOTIFY on the
/// channel can send thousands a second, and the log must not become the
/// attack. At most one line per `interval`, saying how many went unlogged
/// since the previous one. Time is passed in.
struct RefusalLog {
  let interval: Duration
  private var lastLine: Duration?
  private var unlogged = 0

  init(interval: Duration = .seconds(10)) {
    self.interval = interval
  }

  /// The line to log for this refusal, or nil when it is only counted.
  mutating func refused(_ refusal: PayloadRefusal, at position: StreamPosition, now: Duration) -> String? {
    if let lastLine, now - lastLine < interval {
      unlogged += 1
      return nil
    }
    let line =
      "refused the payload of the event at \(position): \(refusal); PBP's triggers do not send it, so no client gets it"
      + (unlogged > 0 ? " (and \(unlogged) more since the last such line)" : "")
    lastLine = now
    unlogged = 0
    return line
  }
}
