import DaemonSupport
import Glibc
import Testing

@Suite struct UnixSocketTests {
  @Test func listenConnectAndAcceptOnAPath() throws {
    let path = "/tmp/pbp-unit-\(getpid()).sock"
    let listening = try UnixSocket.listen(path: path, mode: 0o600)
    defer {
      close(listening)
      unlink(path)
    }
    UnixSocket.setNonBlocking(listening)
    #expect(UnixSocket.acceptNonBlocking(listening) == nil)
    let client = try UnixSocket.connect(path: path)
    defer { close(client) }
    let accepted = try #require(UnixSocket.acceptNonBlocking(listening))
    close(accepted)
  }

  @Test func aPathTooLongForTheAddressIsAnError() {
    let path = "/tmp/" + String(repeating: "x", count: 200)
    #expect(throws: SystemError.self) { _ = try UnixSocket.connect(path: path) }
  }
}
