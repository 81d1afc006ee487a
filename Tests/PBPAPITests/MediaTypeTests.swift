import Testing

@testable import PBPAPI

@Suite struct MediaTypeTests {
  @Test func theParametersAndTheWhitespaceGoAndTheTypeIsLowered() {
    #expect(mediaType(of: "application/json") == "application/json")
    #expect(mediaType(of: "Application/JSON; charset=UTF-8") == "application/json")
    #expect(mediaType(of: " \tapplication/x-www-form-urlencoded ;q=1") == "application/x-www-form-urlencoded")
  }

  @Test func noHeaderOrOneOfSeparatorsAloneHasNoType() {
    #expect(mediaType(of: nil) == nil)
    #expect(mediaType(of: "") == nil)
    #expect(mediaType(of: ";;") == nil)
  }

  /// Found by Fuzz/Targets/request-body.swift, whose model keeps the rule
  /// the server always had: the first segment that is not empty.
  @Test func separatorsBeforeTheTypeAreSkipped() {
    #expect(mediaType(of: ";;Text/Plain;x") == "text/plain")
    #expect(mediaType(of: " ;application/json") == "")
    #expect(mediaType(of: "   ") == "")
  }

  @Test func aNonASCIITypeKeepsItsOtherLettersAndMatchesNothingKnown() {
    #expect(mediaType(of: "APPLİCATION/JSON") == "applİcation/json")
  }
}
