import CSystemShim
import Glibc

/// Counters in memory shared between processes: an anonymous file (memfd)
/// that a parent creates and its children inherit and map, each counter a
/// 64-bit word changed only with atomic operations.
///
/// Threading rule: any thread of any process that maps it may read and write
/// any counter; every access is atomic (acquire/release), which is all the
/// consistency the counters promise: a reader may see one counter of a group
/// updated before another.
public final class SharedCounters: @unchecked Sendable {
  /// The memfd, to pass to child processes.
  public let fd: Int32
  public let count: Int
  private let base: UnsafeMutablePointer<UInt64>

  /// New zeroed counters (in the parent).
  public static func create(count: Int) throws(SystemError) -> SharedCounters {
    let fd = pbp_shared_memory_create(count * 8)
    guard fd >= 0 else { throw SystemError("memfd_create") }
    guard let counters = SharedCounters(fd: fd, count: count) else { throw SystemError("mmap") }
    return counters
  }

  /// Maps counters a child inherited; their file's size says how many there are.
  public convenience init?(inheritedFD fd: Int32) {
    let size = lseek(fd, 0, SEEK_END)
    guard size > 0 else { return nil }
    self.init(fd: fd, count: Int(size) / 8)
  }

  private init?(fd: Int32, count: Int) {
    guard let address = pbp_shared_memory_map(fd, count * 8) else { return nil }
    self.fd = fd
    self.count = count
    base = address.bindMemory(to: UInt64.self, capacity: count)
  }

  private func address(_ index: Int) -> UnsafeMutablePointer<UInt64> {
    precondition(index >= 0 && index < count, "shared counter \(index) out of range 0..<\(count)")
    return base + index
  }

  public func load(_ index: Int) -> UInt64 { pbp_atomic_load(address(index)) }
  public func store(_ index: Int, _ value: UInt64) { pbp_atomic_store(address(index), value) }
  public func add(_ index: Int, _ delta: Int64) { pbp_atomic_add(address(index), delta) }
}
