/// Something stamped with a sequence number of its epoch: what the rings keep
/// (the worker's `EventRing`, notifyd's `StoredEventRing`), consecutive, so a
/// ring can tell exactly whether it still holds everything after a position.
public protocol Sequenced {
  var seq: UInt64 { get }
}
