/// An optional configuration file for a daemon: one `name = value` a line,
/// where `name` is a long option without its dashes (`ring-size = 4096`);
/// `#` starts a comment. Flags on the command line win over the file.
public enum ConfigFile {
  public struct Error: Swift.Error, CustomStringConvertible {
    public let description: String
  }

  /// The command line with the file's settings put before the flags, so that
  /// a flag given again on the command line overrides them (the last one wins).
  public static func expand(_ arguments: [String], readFile: (String) -> String?) throws(Error) -> [String] {
    var path: String?
    var rest: [String] = []
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      if argument == "--config" {
        guard index + 1 < arguments.count else { throw Error(description: "--config needs a file") }
        path = arguments[index + 1]
        index += 2
        continue
      }
      if argument.hasPrefix("--config=") {
        path = String(argument.dropFirst("--config=".count))
      } else {
        rest.append(argument)
      }
      index += 1
    }
    guard let path else { return arguments }
    guard let text = readFile(path) else { throw Error(description: "cannot read the configuration file \(path)") }
    return try settings(in: text, file: path) + rest
  }

  static func settings(in text: String, file: String) throws(Error) -> [String] {
    var arguments: [String] = []
    for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = rawLine.prefix { $0 != "#" }.trimmingWhitespace()
      if line.isEmpty { continue }
      guard let equals = line.firstIndex(of: "=") else {
        throw Error(description: "\(file):\(number + 1): expected `name = value`")
      }
      let name = line[..<equals].trimmingWhitespace()
      var value = line[line.index(after: equals)...].trimmingWhitespace()
      if value.count >= 2, value.first == "\"", value.last == "\"" { value = String(value.dropFirst().dropLast()) }
      guard name.first?.isLetter == true, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
        throw Error(description: "\(file):\(number + 1): `\(name)` is not an option name")
      }
      if value == "true" {
        arguments.append("--\(name)")
      } else if value != "false" {
        arguments.append(contentsOf: ["--\(name)", value])
      }
    }
    return arguments
  }
}
