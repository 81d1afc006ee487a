/// Literals for documents built in code (the OpenAPI document, JSON Schemas):
/// `["type": "string", "minLength": 1]` reads as the JSON it makes.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
  public init(stringLiteral value: String) { self = .string(value) }
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  public init(integerLiteral value: Int) { self = .number(String(value)) }
  public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
  public init(nilLiteral: ()) { self = .null }

  /// A later member of the same name wins, as in ``JSONParser``.
  public init(dictionaryLiteral elements: (String, JSONValue)...) {
    self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
  }

  /// A number from an integer of any width (Int64.min, UInt64.max).
  public static func integer<Value: BinaryInteger>(_ value: Value) -> JSONValue { .number(String(value)) }

  /// The members of both objects, `other`'s winning; anything but two objects gives `other`.
  public func merging(_ other: JSONValue) -> JSONValue {
    guard case .object(let mine) = self, case .object(let theirs) = other else { return other }
    return .object(mine.merging(theirs) { _, last in last })
  }
}
