// fuzz-links: WALStream
// WALStream: the replication stream's decoders and the reader's state machine
// on whatever a walsender (or something posing as one) might send.
//
// Input: a control byte (bit 0: the frames are pgoutput messages, wrapped in
// XLogData here, rather than whole CopyData payloads; bit 1: an earlier run
// stamped a position, taken from the next 12 bytes; bit 2: the slot started
// at the next 8 bytes), then frames: a 2-byte length, a confirmable-LSN
// selector byte, and the frame's bytes.
//
// Properties: no crash and no trap, whatever the bytes; a pgoutput Begin,
// Commit or Message that decodes encodes back to exactly its bytes, and the
// skipped kinds are exactly those type bytes; XLogData keeps every byte after
// its 25-byte header; the events come with strictly rising positions, all
// after the stamped one; the flush confirmed never goes back, never below the
// slot's start, and never beyond what was delivered whole or what the caller
// said it may confirm (unless the start already was); a reply that reports no
// flush (0/0, while the ring holds it back) moves nothing.
import WALStream

private func lsn(_ bytes: ArraySlice<UInt8>) -> LSN {
  LSN(bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
}

private func checkDecoders(_ frame: ArraySlice<UInt8>) {
  if let decoded = try? PgOutputMessage.decode(frame) {
    switch decoded {
    case .skipped:
      require(
        "RYOIUDT".utf8.contains(frame.first!) && decoded.encoded() == [frame.first!],
        "skipped \(decoded) for type \(frame.first!)")
    default:
      require(decoded.encoded().elementsEqual(frame), "\(decoded) encodes to other bytes than \(Array(frame))")
    }
  }
  if case .xLogData(let data)? = try? ReplicationMessage.decode(frame) {
    require(data.data.elementsEqual(frame.dropFirst(25)), "XLogData lost payload bytes")
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWALStream(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  let control = input.byte()
  let wrap = control & 1 != 0
  var stamped: WALPosition?
  if control & 2 != 0 {
    let bytes = (0..<12).map { _ in input.byte() }
    stamped = WALPosition(
      commitLSN: lsn(bytes[0..<8]), index: bytes[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
  }
  let start = control & 4 != 0 ? lsn((0..<8).map { _ in input.byte() }[...]) : LSN.zero
  var machine = WALStreamStateMachine(startingAt: start, alreadyStamped: stamped, now: .zero)
  var lastPosition = stamped
  var lastFlush = start
  var now = Duration.zero

  while !input.isEmpty {
    let length = Int(input.uint16())
    let selector = input.byte()
    var frame: [UInt8] = []
    for _ in 0..<length where !input.isEmpty { frame.append(input.byte()) }
    checkDecoders(frame[...])
    let message: ReplicationMessage
    if wrap {
      message = .xLogData(
        XLogData(walStart: .zero, walEnd: .zero, serverClock: .init(microsecondsSince2000: 0), data: frame[...]))
    } else {
      guard let decoded = try? ReplicationMessage.decode(frame[...]) else { continue }
      message = decoded
    }
    now += .seconds(Int64(selector & 15))
    do {
      if let event = try machine.received(message, now: now) {
        if let lastPosition {
          require(event.position > lastPosition, "\(event.position) after \(lastPosition)")
        }
        lastPosition = event.position
      }
    } catch {
      // The reader drops the connection here.
      break
    }
    // The ring may need nothing, or the commit of some event it keeps.
    let confirmable = selector & 16 != 0 ? LSN.max : (lastPosition?.commitLSN ?? .zero)
    if let update = machine.statusUpdate(confirmable: confirmable, clock: .init(microsecondsSince2000: 0), now: now) {
      // A reply that reports no flush (0/0: unknown to the walsender) while
      // the ring holds it back moves the slot nowhere; it names the write only.
      if update.flush == .zero && lastFlush > .zero {
        require(update.apply == .zero && machine.confirmedFlush == lastFlush, "a reply without a flush moved it")
        require(update.write >= lastFlush, "write \(update.write) behind the flush \(lastFlush)")
        continue
      }
      require(update.flush >= lastFlush, "the flush went back from \(lastFlush) to \(update.flush)")
      require(
        update.flush == lastFlush || (update.flush <= machine.deliveredThrough && update.flush <= confirmable),
        "flush \(update.flush) beyond delivered \(machine.deliveredThrough) or confirmable \(confirmable)")
      require(update.write >= update.flush, "write \(update.write) behind flush \(update.flush)")
      lastFlush = update.flush
    }
  }
  return 0
}
