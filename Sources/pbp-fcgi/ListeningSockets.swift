import DaemonSupport
import FastCGI
import Glibc

/// The master's two FastCGI sockets: `api` for every request, `polls` for
/// POST /api/changes only (nginx sends polls there, and the worker threads
/// that accept on it never run SQL). Taken from systemd's socket activation
/// when it passes them (told apart by the paths they are bound to), else
/// opened here. Kept at fd 10 or above; workers receive them as fd 3 and 5.
struct ListeningSockets {
  let api: Int32
  let polls: Int32
  /// The socket files this process created (and removes when it stops).
  private let ownedFiles: [String]

  init(options: FcgiCommand, log: Log) throws {
    let inherited = Self.fromSystemd()
    var owned: [String] = []
    func open(_ path: String) throws -> Int32 {
      guard let fd = FastCGISocket.open(path: path, mode: mode_t(options.socketMode, radix: 8)!) else {
        throw SystemError("listen on \(path)")
      }
      if let group = options.socketGroup { try FileSystem.changeGroup(path, to: group) }
      owned.append(path)
      log.info("listening on \(path)")
      return ChildProcess.moveOutOfTheWay(fd)
    }
    let passedPolls = inherited.first { $0.path == options.pollSocket }
    let passedAPI = inherited.first { $0.path != options.pollSocket }
    if let passedAPI {
      api = passedAPI.fd
      log.info("using the socket systemd passed for the API (fd \(passedAPI.fd), \(passedAPI.path ?? "unnamed"))")
    } else {
      api = try open(options.socket)
    }
    if let passedPolls {
      polls = passedPolls.fd
      log.info("using the socket systemd passed for polls (fd \(passedPolls.fd), \(options.pollSocket))")
    } else {
      if passedAPI != nil {
        log.warning("systemd passed no socket bound to \(options.pollSocket) (--poll-socket); opening it")
      }
      polls = try open(options.pollSocket)
    }
    for extra in inherited where extra.fd != api && extra.fd != polls {
      log.warning("closing a socket systemd passed that is neither --socket nor --poll-socket: \(extra.path ?? "?")")
      close(extra.fd)
    }
    ownedFiles = owned
  }

  /// LISTEN_FDS socket activation: fds 3, 4, … with the paths they are bound to.
  private static func fromSystemd() -> [(fd: Int32, path: String?)] {
    guard let count = getenv("LISTEN_FDS").flatMap({ Int32(String(cString: $0)) }), count >= 1,
      let pid = getenv("LISTEN_PID").flatMap({ Int32(String(cString: $0)) }), pid == getpid()
    else { return [] }
    unsetenv("LISTEN_FDS")
    unsetenv("LISTEN_PID")
    unsetenv("LISTEN_FDNAMES")
    return (3..<3 + count).map { fd in
      let path = UnixSocket.boundPath(fd)
      return (ChildProcess.moveOutOfTheWay(fd), path)
    }
  }

  func removeFiles() {
    for path in ownedFiles { unlink(path) }
  }
}
