import ChangeStream
import DaemonSupport
import Glibc

/// The worker's one connection to pbp-notifyd, on its own thread: says where
/// the worker stands, then feeds every frame to the hub. Reconnects by itself;
/// a reconnect to the same notifyd resumes without loss.
public struct NotifydSubscription: Sendable {
  public let socketPath: String
  public let hub: ChangeHub
  public let log: Log

  public init(socketPath: String, hub: ChangeHub, log: Log) {
    self.socketPath = socketPath
    self.hub = hub
    self.log = log
  }

  public func start() {
    Threads.start(name: "pbp-stream") { run() }
  }

  private func run() {
    var delay: Duration = .milliseconds(50)
    var reportedFailure = false
    while true {
      do {
        let fd = try UnixSocket.connect(path: socketPath)
        delay = .milliseconds(50)
        reportedFailure = false
        follow(fd)
        close(fd)
        hub.streamInterrupted()
      } catch {
        if !reportedFailure { log.warning("cannot reach pbp-notifyd: \(error); retrying") }
        reportedFailure = true
      }
      let jittered = delay * Double.random(in: 0.5...1.0)
      usleep(UInt32(jittered.milliseconds * 1000))
      // Capped well below the 1 s a snapshot read waits for the stream to return.
      delay = min(delay * 2, .milliseconds(500))
    }
  }

  /// Reads frames until the connection ends or notifyd says something we cannot follow.
  private func follow(_ fd: Int32) {
    let resumeFrom = hub.resumePosition
    do {
      try SocketWrite.writeAll(
        fd,
        StreamFrame.hello(
          version: StreamFrame.protocolVersion, resumeFrom: resumeFrom, history: hub.historyOnJoin
        ).encoded)
    } catch {
      log.warning("pbp-notifyd: \(error)")
      return
    }
    var decoder = StreamFrameDecoder()
    var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    var greeted = false
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
          case .event(let seq, let payload) where greeted:
            events.append(ChangeEvent(seq: seq, payload: payload))
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
    log.error("pbp-notifyd's sequence numbers skipped; reconnecting")
  }
}
