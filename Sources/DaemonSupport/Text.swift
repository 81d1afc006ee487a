extension StringProtocol {
  /// Without the spaces, tabs and line ends around it: configuration values,
  /// header values, libpq's messages. Judged by Unicode scalar, since "\r\n"
  /// is one Character and a combining mark joins the space before it.
  public func trimmingWhitespace() -> String {
    let isWhitespace = { (scalar: Unicode.Scalar) in scalar == " " || scalar == "\t" || scalar == "\r" || scalar == "\n"
    }
    let scalars = unicodeScalars
    guard let first = scalars.firstIndex(where: { !isWhitespace($0) }),
      let last = scalars.lastIndex(where: { !isWhitespace($0) })
    else { return "" }
    return String(String.UnicodeScalarView(scalars[first...last]))
  }
}
