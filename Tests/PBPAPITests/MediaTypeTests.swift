import Testing

@testable import PBPAPI

@Suite struct MediaTypeTests {
  @Test func theParametersAndTheWhitespaceGoAndTheTypeIsLowered() {
    #expect(mediaType(of: "application/json") == "application/json")
    #expect(mediaType(of: "Application/JSON; charset=UTF-8") == "application/json")
    #expect(mediaType(of: " \tapplication/x-www-form-urlencoded ;q=1") == "application/x-www-form-urlencoded")
  }

  @Test func noHeaderOrAnEmptyOneHasNoType() {
    #expect(mediaType(of: nil) == nil)
    #expect(mediaType(of: "") == nil)
  }

  @Test func onlyParametersOrOnlySpacesIsAnEmptyType() {
    #expect(mediaType(of: ";charset=utf-8") == "")
    #expect(mediaType(of: "   ") == "")
  }

  @Test func aNonASCIITypeKeepsItsOtherLettersAndMatchesNothingKnown() {
    #expect(mediaType(of: "APPLİCATION/JSON") == "applİcation/json")
  }
}
