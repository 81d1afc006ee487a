import Testing

@testable import PBPAPI

@Suite struct CollectionCacheTests {
  func stamp(_ version: Int) -> TableResource.Stamp {
    TableResource.Stamp(version: String(version), httpDate: "Mon, 23 Nov 2026 12:00:00 GMT")
  }

  @Test func keepsPagesByTableAndLimit() {
    let cache = CollectionCache()
    cache.store(table: "t", limit: 10, rows: "[1]", stamp: stamp(1))
    #expect(cache.rows(table: "t", limit: 10)?.rows == "[1]")
    #expect(cache.rows(table: "t", limit: 10)?.stamp == stamp(1))
    #expect(cache.rows(table: "t", limit: 11) == nil)
    #expect(cache.rows(table: "u", limit: 10) == nil)
    cache.store(table: "t", limit: 10, rows: "[1,2]", stamp: stamp(2))
    #expect(cache.rows(table: "t", limit: 10)?.rows == "[1,2]")
  }

  @Test func evictsTheLeastRecentlyUsedBeyondItsBounds() {
    let cache = CollectionCache(maximumEntries: 2, maximumBytes: 1000)
    cache.store(table: "a", limit: 1, rows: "[]", stamp: stamp(1))
    cache.store(table: "b", limit: 1, rows: "[]", stamp: stamp(1))
    _ = cache.rows(table: "a", limit: 1)
    cache.store(table: "c", limit: 1, rows: "[]", stamp: stamp(1))
    #expect(cache.rows(table: "b", limit: 1) == nil, "b was used least recently")
    #expect(cache.rows(table: "a", limit: 1) != nil && cache.rows(table: "c", limit: 1) != nil)
    cache.store(table: "d", limit: 1, rows: String(repeating: "x", count: 251), stamp: stamp(1))
    #expect(cache.rows(table: "d", limit: 1) == nil, "a page over a quarter of the bytes is not kept")
    cache.store(table: "e", limit: 1, rows: String(repeating: "x", count: 250), stamp: stamp(1))
    cache.store(table: "f", limit: 1, rows: String(repeating: "x", count: 250), stamp: stamp(1))
    #expect(cache.rows(table: "e", limit: 1) != nil && cache.rows(table: "f", limit: 1) != nil)
  }
}
