import Glibc

/// One line per message on stderr. Under systemd (JOURNAL_STREAM set) each line
/// starts with its syslog priority, `<6>`, which journald turns into the
/// entry's level; on a terminal the level is written as a word.
public struct Log: Sendable {
  public enum Level: Int32, Sendable {
    case error = 3
    case warning = 4
    case notice = 5
    case info = 6
    case debug = 7

    var word: String {
      switch self {
      case .error: "error"
      case .warning: "warning"
      case .notice: "notice"
      case .info: "info"
      case .debug: "debug"
      }
    }
  }

  public let component: String
  public let minimumLevel: Level
  private let forJournal: Bool

  public init(component: String, minimumLevel: Level = .info) {
    self.component = component
    self.minimumLevel = minimumLevel
    self.forJournal = getenv("JOURNAL_STREAM") != nil
  }

  public func log(_ level: Level, _ text: String) {
    guard level.rawValue <= minimumLevel.rawValue else { return }
    // libpq's messages span lines; a journal entry is one line.
    let message = text.split(whereSeparator: \.isNewline).map { $0.drop { $0 == "\t" || $0 == " " } }
      .joined(separator: "; ")
    let line: String
    if forJournal {
      line = "<\(level.rawValue)>\(component): \(message)\n"
    } else {
      line = "\(component)[\(getpid())] \(level.word): \(message)\n"
    }
    // One write(2) per line, so that lines from several threads never interleave.
    var bytes = Array(line.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
  }

  public func error(_ message: String) { log(.error, message) }
  public func warning(_ message: String) { log(.warning, message) }
  public func notice(_ message: String) { log(.notice, message) }
  public func info(_ message: String) { log(.info, message) }
  public func debug(_ message: String) { log(.debug, message) }
}
