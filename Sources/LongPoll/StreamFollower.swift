import ChangeStream
import DaemonSupport
import Glibc

/// The worker's one connection to pbp-notifyd: says where the worker stands,
/// then feeds every frame to the hub; reconnects when the connection ends, and
/// a reconnect to the same notifyd resumes without loss. ``run()`` blocks for
/// the life of the process: the process gives it a thread.
public struct StreamFollower<Responder: PollResponder>: Sendable {
  public let socketPath: String
  public let hub: ChangeHub<Responder>
  public let log: Log

  public init(socketPath: String, hub: ChangeHub<Responder>, log: Log) {
    self.socketPath = socketPath
    self.hub = hub
    self.log = log
  }

  public func run() -> Never {
    // Capped well below the 1 s a snapshot read waits for the stream to return.
    var backoff = Backoff(first: .milliseconds(50), cap: .milliseconds(500), jitter: 0.5...1.0)
    var reportedFailure = false
    while true {
      do {
        let fd = try UnixSocket.connect(path: socketPath)
        backoff.reset()
        reportedFailure = false
        follow(fd)
        close(fd)
        hub.streamInterrupted()
      } catch {
        if !reportedFailure { log.warning("cannot reach pbp-notifyd: \(error); retrying") }
        reportedFailure = true
      }
      Threads.sleep(for: backoff.next())
    }
  }

  /// Reads frames until the connection ends or notifyd says something we cannot follow.
  private func follow(_ fd: Int32) {
    let hello = StreamFrame.hello(
      version: StreamFrame.protocolVersion, resumeFrom: hub.current, history: hub.historyOnJoin)
    do {
      try SocketWrite.writeAll(fd, hello.encoded)
    } catch {
      log.warning("pbp-notifyd: \(error)")
      return
    }
    var decoder = StreamFrameDecoder()
    var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    var greeted = false
    var refusals = RefusalLog()
    while true {
      let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else {
        log.warning("pbp-notifyd closed the stream; reconnecting")
        return
      }
      decoder.feed(buffer[0..<count])
      var events: [ChangeEvent] = []
      do {
        while let frame = try decoder.next() {
          switch frame {
          case .welcome(let version, let from, let resumed) where !greeted && version == StreamFrame.protocolVersion:
            greeted = true
            hub.streamStarted(at: from, resumed: resumed)
            log.info("following pbp-notifyd from \(from) (\(resumed ? "resumed" : "a fresh start"))")
          case .event(let position, let payload) where greeted:
            let event = ChangeEvent(position: position, payload: payload)
            if let refusal = event.refusal,
              let line = refusals.refused(refusal, at: position, now: MonotonicClock.now())
            {
              log.warning(line)
            }
            events.append(event)
          case .newEpoch(let current) where greeted:
            guard hub.append(events) else { return inconsistent() }
            events.removeAll()
            hub.streamStarted(at: current, resumed: false)
            log.info("pbp-notifyd started epoch \(current)")
          default:
            log.error("unexpected frame from pbp-notifyd: \(frame); reconnecting")
            return
          }
        }
      } catch {
        log.error("bad frame from pbp-notifyd: \(error); reconnecting")
        return
      }
      guard hub.append(events) else { return inconsistent() }
    }
  }

  private func inconsistent() {
    log.error("pbp-notifyd's events came out of order; reconnecting")
  }
}
