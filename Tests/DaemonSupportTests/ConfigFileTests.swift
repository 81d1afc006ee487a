import DaemonSupport
import Testing

@Suite struct ConfigFileTests {
  let file = """
    # pbp-notifyd
    conninfo = "host=/run/postgresql dbname=pbp"
    ring-size = 4096   # events
    verbose = true
    """

  @Test func fileSettingsComeFirstSoThatFlagsWin() throws {
    let expanded = try ConfigFile.expand(["--config", "/etc/pbp.conf", "--ring-size", "9"]) { _ in file }
    #expect(
      expanded == [
        "--conninfo", "host=/run/postgresql dbname=pbp", "--ring-size", "4096", "--verbose", "--ring-size", "9",
      ])
  }

  @Test func withoutConfigNothingChanges() throws {
    #expect(try ConfigFile.expand(["--ring-size", "9"]) { _ in nil } == ["--ring-size", "9"])
  }

  @Test func badFilesAreErrors() {
    #expect(throws: ConfigFile.Error.self) { try ConfigFile.expand(["--config", "x"]) { _ in nil } }
    #expect(throws: ConfigFile.Error.self) { try ConfigFile.expand(["--config=x"]) { _ in "no equals sign" } }
    #expect(throws: ConfigFile.Error.self) { try ConfigFile.expand(["--config=x"]) { _ in "--evil = 1" } }
  }
}

@Suite struct TextTests {
  @Test func whitespaceAroundIsTrimmedByScalarNotByCharacter() {
    #expect(" \tvalue \r\n".trimmingWhitespace() == "value")
    #expect("a b".trimmingWhitespace() == "a b")
    #expect(" \n ".trimmingWhitespace() == "")
    // "\r\n" is one Character, and a combining mark joins the space before it.
    #expect("message\r\n".trimmingWhitespace() == "message")
    #expect(" \u{301}x".trimmingWhitespace() == "\u{301}x")
  }
}
