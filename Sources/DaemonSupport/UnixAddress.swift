import Glibc

/// A unix-domain socket address: a path, or (with a leading `@`) a name in the
/// abstract namespace, as `$NOTIFY_SOCKET` may give it.
struct UnixAddress {
  private var storage = sockaddr_un()
  /// The bytes of `storage` that count (the family and the path, without padding).
  let length: socklen_t

  init(_ path: String) throws(SystemError) {
    let abstract = path.first == "@"
    let name = Array((abstract ? path.dropFirst() : path[...]).utf8)
    let offset = abstract ? 1 : 0
    // A path needs room for its terminating NUL; an abstract name starts after one.
    guard offset + name.count < MemoryLayout.size(ofValue: storage.sun_path) else {
      throw SystemError("socket path too long: \(path)", code: ENAMETOOLONG)
    }
    storage.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &storage.sun_path) { raw in
      for (index, byte) in name.enumerated() { raw[offset + index] = byte }
    }
    length = socklen_t(MemoryLayout<sa_family_t>.size + offset + name.count + (abstract ? 0 : 1))
  }

  /// Calls `body` with the address as the `sockaddr` the socket calls take.
  func withSocketAddress<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
    withUnsafePointer(to: storage) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
    }
  }
}
