import JSON
import Testing

@testable import PBPAPI

@Suite struct TableResourceTypeTests {
  @Test func textColumnsTakeStringsOnly() {
    for type in ["text", "character varying(20)", "character(3)"] {
      #expect(TableResource.suits(.string("5"), type: type))
      #expect(TableResource.suits(.null, type: type))
      #expect(!TableResource.suits(.number("5"), type: type))
      #expect(!TableResource.suits(.bool(true), type: type))
      #expect(!TableResource.suits(.array([.string("a")]), type: type))
      #expect(!TableResource.suits(.object(["a": .null]), type: type))
    }
  }

  @Test func scalarColumnsTakeNoArraysOrObjects() {
    for type in ["integer", "bigint", "numeric(10,2)", "boolean", "timestamp with time zone", "uuid"] {
      #expect(TableResource.suits(.number("5"), type: type))
      #expect(TableResource.suits(.string("5"), type: type), "PostgreSQL's input syntax decides")
      #expect(!TableResource.suits(.array([]), type: type))
      #expect(!TableResource.suits(.object([:]), type: type))
    }
  }

  @Test func structuredColumnsTakeStructuredValues() {
    #expect(TableResource.suits(.object(["a": .number("1")]), type: "jsonb"))
    #expect(TableResource.suits(.array([.number("1")]), type: "json"))
    #expect(TableResource.suits(.array([.number("1")]), type: "integer[]"))
    #expect(TableResource.suits(.number("1"), type: "jsonb"))
  }
}
