import JSON

public struct HeaderField: Equatable, Sendable {
  public let name: String
  public let value: String

  public init(name: String, value: String) {
    self.name = name
    self.value = value
  }
}

/// A response as the worker writes it to nginx.
public struct HTTPResponse: Equatable, Sendable {
  public var status: Int
  public var headers: [HeaderField]
  public var body: [UInt8]

  public init(status: Int, headers: [HeaderField] = [], body: [UInt8] = []) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  public static func json(_ status: Int, _ text: String, headers: [HeaderField] = []) -> HTTPResponse {
    json(status, Array(text.utf8), headers: headers)
  }

  public static func json(_ status: Int, _ body: [UInt8], headers: [HeaderField] = []) -> HTTPResponse {
    HTTPResponse(
      status: status, headers: [HeaderField(name: "Content-Type", value: "application/json")] + headers, body: body)
  }

  public static func noContent() -> HTTPResponse { HTTPResponse(status: 204) }

  public init(error: APIError) {
    let body = "{\"error\":\(JSONWriter.quoted(error.code)),\"message\":\(JSONWriter.quoted(error.message))}"
    self = .json(error.status, body, headers: error.extraHeaders)
  }

  public var reason: String {
    switch status {
    case 200: "OK"
    case 201: "Created"
    case 204: "No Content"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 409: "Conflict"
    case 413: "Content Too Large"
    case 415: "Unsupported Media Type"
    case 422: "Unprocessable Content"
    case 500: "Internal Server Error"
    case 503: "Service Unavailable"
    default: "Status"
    }
  }

}
