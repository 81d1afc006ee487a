import Testing

@testable import FastCGI

@Suite struct FastCGIRecordsTests {
  /// Splits records back into (type, request id, content), checking each header.
  func records(_ bytes: [UInt8]) -> [(type: UInt8, id: UInt16, content: [UInt8])] {
    var result: [(UInt8, UInt16, [UInt8])] = []
    var index = 0
    while index < bytes.count {
      #expect(bytes[index] == 1, "version")
      let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
      let padding = Int(bytes[index + 6])
      let id = UInt16(bytes[index + 2]) << 8 | UInt16(bytes[index + 3])
      result.append((bytes[index + 1], id, Array(bytes[(index + 8)..<(index + 8 + length)])))
      index += 8 + length + padding
    }
    #expect(index == bytes.count)
    return result
  }

  @Test func anEncodedResponseCarriesTheRecordsOfRequestOneWithTheHeadersInOrder() {
    let body = Array(#"{"cursor":"1-2","events":[]}"#.utf8)
    let encoded = EncodedResponse(
      status: 200, reason: "OK", headers: [("Content-Type", "application/json"), ("X-A", "b")], body: body)
    let head = "Status: 200 OK\r\nContent-Type: application/json\r\nX-A: b\r\nContent-Length: \(body.count)\r\n\r\n"
    #expect(encoded.head == Array(head.utf8))
    #expect(encoded.body == body)
    #expect(encoded.recordsOfRequestOne == FastCGIRecords.response(requestID: 1, head: encoded.head, body: body))
    #expect(records(encoded.recordsOfRequestOne).allSatisfy { $0.id == 1 })
  }

  @Test func aSmallResponseIsOneStdoutRecordThenTheEnd() {
    let encoded = FastCGIRecords.response(requestID: 0x0102, head: Array("Status: 200 OK\r\n\r\n".utf8), body: [65])
    let parsed = records(encoded)
    #expect(parsed.map(\.type) == [6, 6, 3])
    #expect(parsed.allSatisfy { $0.id == 0x0102 })
    #expect(parsed[0].content == Array("Status: 200 OK\r\n\r\nA".utf8))
    #expect(parsed[1].content.isEmpty)
    #expect(parsed[2].content == [0, 0, 0, 0, 0, 0, 0, 0])
  }

  @Test func theReleaseIsOneEmptyStderrRecordOfTheRequest() {
    // nginx drops an idle kept connection on which anything arrives; read
    // in front of a response instead, an empty stderr record is skipped.
    let parsed = records(FastCGIRecords.release(requestID: 1))
    #expect(parsed.count == 1)
    #expect(parsed.first?.type == 7)
    #expect(parsed.first?.id == 1)
    #expect(parsed.first?.content == [])
  }

  @Test(arguments: [0, 1, 65_535 - 10, 65_535, 65_536, 200_000])
  func largeBodiesAreSplitAtTheRecordLimitAndArriveWhole(bodySize: Int) {
    let head = Array("Status: 200 OK\r\nContent-Length: \(bodySize)\r\n\r\n".utf8)
    let body = (0..<bodySize).map { UInt8(truncatingIfNeeded: $0 * 7) }
    let parsed = records(FastCGIRecords.response(requestID: 1, head: head, body: body))
    let stdout = parsed.dropLast().map(\.content)
    #expect(stdout.allSatisfy { $0.count <= 65_535 })
    #expect(stdout.last == [], "an empty record ends the stream")
    #expect(stdout.dropLast().allSatisfy { !$0.isEmpty }, "no empty record before the end")
    #expect(Array(stdout.joined()) == head + body)
    #expect(parsed.last?.type == 3)
  }

  @Test func aLargeBodyLeavesInPiecesOfWholeRecordsThatAddUpToTheResponse() {
    let head = Array("Status: 200 OK\r\n\r\n".utf8)
    let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    var pieces: [[UInt8]] = []
    let sent = FastCGIRecords.write(requestID: 9, head: head, body: body, piecesUpTo: 100_000) { piece in
      pieces.append(Array(piece))
      return true
    }
    #expect(sent)
    #expect(pieces.joined().elementsEqual(FastCGIRecords.response(requestID: 9, head: head, body: body)))
    // 300,019 bytes are five records of up to 65,535; two would not fit in 100,000 bytes.
    #expect(pieces.count == 5, "one record a piece, the last with the end of the request")
    for piece in pieces {
      #expect(piece.count <= 100_000 + 8 + 65_535)
      _ = records(piece)  // whole records only
    }
    var calls = 0
    let refused = FastCGIRecords.write(requestID: 9, head: head, body: body, piecesUpTo: 100_000) { _ in
      calls += 1
      return false
    }
    #expect(!refused && calls == 1, "a peer that is gone gets no more pieces")
  }
}
