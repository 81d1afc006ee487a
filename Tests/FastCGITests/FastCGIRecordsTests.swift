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

  @Test func aSmallResponseIsOneStdoutRecordThenTheEnd() {
    let encoded = FastCGIRecords.response(requestID: 0x0102, head: Array("Status: 200 OK\r\n\r\n".utf8), body: [65])
    let parsed = records(encoded)
    #expect(parsed.map(\.type) == [6, 6, 3])
    #expect(parsed.allSatisfy { $0.id == 0x0102 })
    #expect(parsed[0].content == Array("Status: 200 OK\r\n\r\nA".utf8))
    #expect(parsed[1].content.isEmpty)
    #expect(parsed[2].content == [0, 0, 0, 0, 0, 0, 0, 0])
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
}
