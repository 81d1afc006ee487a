/// What one worker process reports about itself.
public struct WorkerStatus: Equatable, Sendable {
  public var pid: Int32
  public var busyThreads: UInt64
  public var parkedPolls: UInt64
  public var eventsDelivered: UInt64
  public var requestsServed: UInt64
  public var databaseConnections: UInt64
  public var epoch: UInt64
  /// The newest cursor's position (``ChangeStream/StreamPosition``'s two parts).
  public var positionMajor: UInt64
  public var positionMinor: UInt32
  public var ringEvents: UInt64
  public var ringBytes: UInt64
  public var payloadsRefused: UInt64

  public init(
    pid: Int32, busyThreads: UInt64 = 0, parkedPolls: UInt64 = 0, eventsDelivered: UInt64 = 0,
    requestsServed: UInt64 = 0, databaseConnections: UInt64 = 0, epoch: UInt64 = 0, positionMajor: UInt64 = 0,
    positionMinor: UInt32 = 0,
    ringEvents: UInt64 = 0, ringBytes: UInt64 = 0, payloadsRefused: UInt64 = 0
  ) {
    self.pid = pid
    self.busyThreads = busyThreads
    self.parkedPolls = parkedPolls
    self.eventsDelivered = eventsDelivered
    self.requestsServed = requestsServed
    self.databaseConnections = databaseConnections
    self.epoch = epoch
    self.positionMajor = positionMajor
    self.positionMinor = positionMinor
    self.ringEvents = ringEvents
    self.ringBytes = ringBytes
    self.payloadsRefused = payloadsRefused
  }
}
