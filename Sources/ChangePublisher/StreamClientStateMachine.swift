import ChangeStream

/// The phases of one stream client (a pbp-fcgi worker process connected to
/// notifyd), and what each thing that happens to it asks of its socket.
///
/// The machine holds the client's inbound decoder and its output buffer; the
/// connection around it only moves bytes. See docs/notifyd-protocol.md.
public struct StreamClientStateMachine {
  public enum State: Equatable, Sendable {
    /// Connected, nothing said yet.
    /// Can transition to: helloPending, catchingUp, live, dropped.
    case awaitingHello
    /// Said HELLO before the history was served (no epoch yet, or the wal
    /// source still reading its backlog); answered when it is.
    /// Can transition to: catchingUp, live, dropped.
    case helloPending(Hello)
    /// Greeted; the ring's events from `next` on are still to be queued,
    /// a chunk at a time as the socket drains.
    /// Can transition to: live, dropped.
    case catchingUp(next: UInt64)
    /// Greeted and caught up: every new event is queued as it arrives.
    /// Can transition to: dropped.
    case live
    /// Cut off: the connection is to be closed.
    case dropped(DropReason)
  }

  /// What a HELLO asked for.
  public struct Hello: Equatable, Sendable {
    public let resumeFrom: Cursor?
    public let history: UInt32

    public init(resumeFrom: Cursor?, history: UInt32) {
      self.resumeFrom = resumeFrom
      self.history = history
    }
  }

  /// Why the protocol, rather than the socket, ends a connection.
  public enum DropReason: Equatable, Sendable, CustomStringConvertible {
    /// A frame a client may not send now: anything but one HELLO.
    case unexpectedFrame(StreamFrame)
    case unsupportedVersion(UInt16)
    case malformedInput(StreamFrameError)
    /// A live client let more than the buffer limit pile up.
    case fellBehind(pendingBytes: Int)
    /// Catch-up was slower than the ring: the next event it needs is gone.
    case overtakenByRing

    public var description: String {
      switch self {
      case .unexpectedFrame(let frame): "unexpected frame \(frame)"
      case .unsupportedVersion(let version): "protocol version \(version) is not \(StreamFrame.protocolVersion)"
      case .malformedInput(let error): "bad frame: \(error)"
      case .fellBehind(let pendingBytes): "fell \(pendingBytes) bytes behind"
      case .overtakenByRing: "fell behind the ring while catching up"
      }
    }
  }

  public enum Action: Equatable, Sendable {
    /// Nothing new for the socket.
    case none
    /// Frames were queued: write them as the socket takes them.
    case write
    /// The HELLO was answered: WELCOME is queued, the events after `from` follow.
    case greeted(from: Cursor, resumed: Bool)
    /// Close the connection.
    case drop(DropReason)
  }

  /// How much catch-up is queued at a time: enough to keep the socket busy,
  /// little enough that a slow client does not pin a copy of the ring.
  public static let catchUpChunk = 256 * 1024

  public private(set) var state: State = .awaitingHello
  public private(set) var output = OutputBuffer()
  /// A client says one HELLO of a few dozen bytes, and nothing else.
  private var decoder = StreamFrameDecoder(maximumLength: 1024)
  /// Bytes a live client may have pending (--subscriber-buffer-limit). Catch-up
  /// never counts against it: it is paced by the socket.
  public let bufferLimit: Int

  public init(bufferLimit: Int) {
    self.bufferLimit = bufferLimit
  }

  /// Whether the socket should be watched for room to write.
  public var wantsToWrite: Bool {
    if case .catchingUp = state { return true }
    return !output.isEmpty
  }

  // MARK: Events

  /// Bytes arrived from the client.
  public mutating func received(_ bytes: some Sequence<UInt8>, history: ChangeHistory) -> Action {
    if case .dropped(let reason) = state { return .drop(reason) }
    decoder.feed(bytes)
    var action = Action.none
    do {
      while let frame = try decoder.next() {
        action = frameReceived(frame, history: history)
        if case .drop = action { return action }
      }
    } catch {
      return drop(.malformedInput(error))
    }
    return action
  }

  /// The stream starts over (the first epoch, a new one after the LISTEN
  /// connection was lost, or the wal source's history after a gap), or the
  /// history began to be served: waiting clients are greeted, greeted ones
  /// told to forget what they had.
  public mutating func epochStarted(history: ChangeHistory) -> Action {
    guard history.isServing, let current = history.newest else { return .none }
    switch state {
    case .awaitingHello, .dropped:
      return .none
    case .helloPending(let hello):
      return greet(hello, history: history)
    case .catchingUp, .live:
      // A catch-up in progress belonged to the old epoch.
      state = .live
      return queue(StreamFrame.newEpoch(current).encoded)
    }
  }

  /// New events were appended to the ring: a live client gets them now, one
  /// catching up finds them in the ring when it gets there.
  public mutating func eventsAppended(_ events: some Sequence<StoredEvent>) -> Action {
    guard case .live = state else { return .none }
    var action = Action.none
    for event in events {
      action = queue(event.frame)
      if case .drop = action { return action }
    }
    return action
  }

  /// The socket took everything queued: catch-up continues from the ring.
  public mutating func outputDrained(history: ChangeHistory) -> Action {
    guard output.isEmpty, case .catchingUp(var next) = state else { return .none }
    let ring = history.ring
    while next <= ring.newestSeq && output.pendingByteCount < Self.catchUpChunk {
      guard let event = ring.element(withSeq: next) else { return drop(.overtakenByRing) }
      output.append(event.frame)
      next += 1
    }
    state = next > ring.newestSeq ? .live : .catchingUp(next: next)
    return .write
  }

  /// The socket took the first `count` pending bytes.
  public mutating func wrote(_ count: Int) {
    output.consume(count)
  }

  // MARK: Transitions

  private mutating func frameReceived(_ frame: StreamFrame, history: ChangeHistory) -> Action {
    guard case .hello(let version, let cursor, let wanted) = frame, case .awaitingHello = state else {
      return drop(.unexpectedFrame(frame))
    }
    guard version == StreamFrame.protocolVersion else { return drop(.unsupportedVersion(version)) }
    let hello = Hello(resumeFrom: cursor, history: wanted)
    guard history.isServing else {
      state = .helloPending(hello)
      return .none
    }
    return greet(hello, history: history)
  }

  /// Says where the client's stream continues from: its own cursor when the
  /// ring still holds everything after it, else a reset to the recent history
  /// it asked for (as much as the ring holds).
  private mutating func greet(_ hello: Hello, history: ChangeHistory) -> Action {
    guard history.isServing, let epoch = history.epoch else { return .none }
    let ring = history.ring
    let from: Cursor
    let resumed: Bool
    let next: UInt64
    if let cursor = hello.resumeFrom, cursor.epoch == epoch, ring.covers(after: cursor.position) {
      from = cursor
      resumed = true
      next = ring.firstSeq(after: cursor.position)
    } else {
      let replayed = min(Int(hello.history), ring.count)
      from = Cursor(epoch: epoch, position: ring.position(before: replayed))
      resumed = false
      next = ring.nextSeq - UInt64(replayed)
    }
    state = next <= ring.newestSeq ? .catchingUp(next: next) : .live
    let welcome = StreamFrame.welcome(version: StreamFrame.protocolVersion, from: from, resumed: resumed)
    if case .drop(let reason) = queue(welcome.encoded) { return .drop(reason) }
    return .greeted(from: from, resumed: resumed)
  }

  /// Queues a frame that counts against the buffer limit.
  private mutating func queue(_ frame: [UInt8]) -> Action {
    output.append(frame)
    guard output.pendingByteCount <= bufferLimit else {
      return drop(.fellBehind(pendingBytes: output.pendingByteCount))
    }
    return .write
  }

  private mutating func drop(_ reason: DropReason) -> Action {
    state = .dropped(reason)
    return .drop(reason)
  }
}
