import DaemonSupport
import Glibc
import Testing

@Suite struct SocketWriteTests {
  private func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    return (fds[0], fds[1])
  }

  @Test func aBlockingSocketTakesEverything() throws {
    let (a, b) = socketPair()
    defer {
      close(a)
      close(b)
    }
    try SocketWrite.writeAll(a, Array("hello".utf8))
    var buffer = [UInt8](repeating: 0, count: 16)
    let count = recv(b, &buffer, buffer.count, 0)
    #expect(Array(buffer[0..<count]) == Array("hello".utf8))
  }

  @Test func aFullNonBlockingSocketSaysHowMuchWentOut() {
    let (a, b) = socketPair()
    defer {
      close(a)
      close(b)
    }
    UnixSocket.setNonBlocking(a)
    let bytes = [UInt8](repeating: 7, count: 8 << 20)
    let outcome = bytes.withUnsafeBytes { SocketWrite.write(a, $0) }
    guard case .wouldBlock(let written) = outcome else {
      Issue.record("expected wouldBlock, got \(outcome)")
      return
    }
    #expect(written > 0 && written < bytes.count)
  }

  @Test func aVanishedPeerIsAFailureNotASignal() {
    let (a, b) = socketPair()
    close(b)
    defer { close(a) }
    let outcome = Array("x".utf8).withUnsafeBytes { SocketWrite.write(a, $0) }
    #expect(outcome == .failed(written: 0, code: EPIPE))
    #expect(throws: SystemError.self) { try SocketWrite.writeAll(a, [1, 2, 3]) }
  }
}
