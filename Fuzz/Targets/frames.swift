// StreamFrameDecoder: the notifyd wire protocol, fed in arbitrary pieces.
//
// Input: a control byte (bits 0–2: how many split points follow, bit 3: a
// small maximum frame length given by the next byte, bit 4: replay the stream
// many times over), the split points (2 bytes each), then the byte stream.
//
// Properties: no crash; the frames, the error and what is left pending are the
// same whether the stream comes whole, byte by byte or cut at the fuzzer's
// points; each frame consumes at least 5 bytes (so decoding always ends); the
// encoder writes every decoded frame back to exactly the bytes it came from;
// the decoder never holds on to a complete frame; a stream replayed past the
// decoder's 64 KiB compaction point decodes to the same frames again and again.
import ChangeStream

private struct Outcome: Equatable {
  var frames: [StreamFrame] = []
  var error: StreamFrameError?
  var pending = 0
}

private func decode(_ chunks: [ArraySlice<UInt8>], maximumLength: Int, total: Int) -> Outcome {
  var decoder = StreamFrameDecoder(maximumLength: maximumLength)
  var outcome = Outcome()
  for chunk in chunks {
    decoder.feed(chunk)
    do throws(StreamFrameError) {
      while let frame = try decoder.next() {
        outcome.frames.append(frame)
        require(outcome.frames.count * 5 <= total, "\(outcome.frames.count) frames from \(total) bytes")
      }
    } catch {
      // The connection ends here; what was left is of no interest.
      outcome.error = error
      return outcome
    }
  }
  outcome.pending = decoder.pendingByteCount
  return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  let control = input.byte()
  let splitCount = Int(control & 7)
  let maximumLength = control & 8 != 0 ? Int(input.byte()) + 1 : StreamFrame.maximumLength
  let replay = control & 16 != 0
  let splits = (0..<splitCount).map { _ in Int(input.uint16()) }
  let stream = input.rest()

  let whole = decode([stream[...]], maximumLength: maximumLength, total: stream.count)

  var cuts = Set(splits.map { stream.isEmpty ? 0 : $0 % (stream.count + 1) })
  cuts.formUnion([0, stream.count])
  let points = cuts.sorted()
  let chunks = zip(points, points.dropFirst()).map { stream[$0..<$1] }
  let split = decode(chunks, maximumLength: maximumLength, total: stream.count)
  require(split == whole, "cut at \(points): \(split) but whole: \(whole)")
  let trickle = decode(stream.indices.map { stream[$0...$0] }, maximumLength: maximumLength, total: stream.count)
  require(trickle == whole, "byte by byte: \(trickle) but whole: \(whole)")

  // The encoding is canonical: the frames are the stream's first bytes.
  var encoded: [UInt8] = []
  for frame in whole.frames { frame.encode(into: &encoded) }
  require(stream.starts(with: encoded), "re-encoded frames differ from the stream")
  let rest = stream[encoded.count...]
  if whole.error == nil {
    require(whole.pending == rest.count, "pending \(whole.pending) of \(rest.count) bytes left")
    if rest.count >= 4 {
      let length = rest.prefix(4).reduce(0) { $0 << 8 | Int($1) }
      require(rest.count - 4 < length, "a complete frame of \(length) bytes left undecoded")
    }
  } else {
    require(rest.count >= 4, "an error before a whole frame header")
    let length = rest.prefix(4).reduce(0) { $0 << 8 | Int($1) }
    switch whole.error! {
    case .emptyFrame: require(length == 0, "emptyFrame for length \(length)")
    case .frameTooLong(let claimed): require(claimed == length && length > maximumLength, "frameTooLong(\(claimed))")
    default:  // a whole frame that is not one of ours
      require(length > 0 && length <= maximumLength && rest.count - 4 >= length, "judged before it was whole")
    }
  }

  // Past the decoder's compaction point: the same frames, over and over.
  // Each feed ends one byte into the next copy, so the decoder never drains
  // (which would reset its buffer) and its read position passes 64 KiB.
  if replay && whole.error == nil && whole.pending == 0 && !whole.frames.isEmpty {
    let copies = (72 * 1024) / stream.count + 1
    let shifted = stream[1...] + stream.prefix(1)
    var decoder = StreamFrameDecoder(maximumLength: maximumLength)
    var count = 0
    for copy in 0...copies {
      decoder.feed(copy == 0 ? stream.prefix(1) : copy == copies ? stream[1...] : shifted[...])
      while let frame = try? decoder.next() {
        require(frame == whole.frames[count % whole.frames.count], "replayed frame \(count) differs")
        count += 1
      }
      require(copy == copies || decoder.pendingByteCount == 1, "\(decoder.pendingByteCount) bytes pending")
    }
    require(count == copies * whole.frames.count, "\(count) frames from \(copies) copies")
    require(decoder.pendingByteCount == 0, "\(decoder.pendingByteCount) bytes left after the replay")
  }
  return 0
}
