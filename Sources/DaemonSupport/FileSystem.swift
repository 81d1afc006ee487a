import Glibc

public enum FileSystem {
  /// The whole file as text, or nil.
  public static func read(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = fread(&chunk, 1, chunk.count, file)
      if count == 0 { break }
      bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Gives `path` to group `name` (for a socket that another service's user must reach).
  public static func changeGroup(_ path: String, to name: String) throws(SystemError) {
    guard let group = getgrnam(name) else { throw SystemError("unknown group \(name)", code: ENOENT) }
    guard chown(path, uid_t.max, group.pointee.gr_gid) == 0 else { throw SystemError("chown \(path)") }
  }
}
