import Glibc

/// Reading the files that hold keys, with the reason when one cannot be read.
enum KeyFile {
  struct ReadError: Error, Equatable, Sendable, CustomStringConvertible {
    let description: String
  }

  /// Files of keys are small; a bigger one is a wrong path, not a key.
  static let maximumBytes = 1 << 20

  static func read(_ path: String) throws(ReadError) -> [UInt8] {
    guard let file = fopen(path, "rb") else {
      throw ReadError(description: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = fread(&chunk, 1, chunk.count, file)
      if count == 0 { break }
      bytes.append(contentsOf: chunk[0..<count])
      guard bytes.count <= maximumBytes else {
        throw ReadError(description: "\(path) is larger than \(maximumBytes) bytes")
      }
    }
    if ferror(file) != 0 {
      throw ReadError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    return bytes
  }

  /// The HS256 secret a key file holds: its bytes as they are, less the line
  /// ends at the end, so that `echo "$secret" > file` and an editor's final
  /// newline do not change the key. The same secret, as text, signs tokens in
  /// any JWT library (`tools/mint_token.py` makes such files: 64 random bytes
  /// written as base64url, 86 characters and a newline).
  static func secret(fromContents contents: [UInt8]) -> [UInt8] {
    var secret = contents[...]
    while let last = secret.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
      secret.removeLast()
    }
    return Array(secret)
  }
}
