extension ChangeEvent {
  /// The members of the event as an arrival of its new row (``EventForm/asArrival``):
  /// `table`, `op: "insert"`, `key`, `mtime`, `new` (as the trigger wrote
  /// it), `old: null`, and `truncated: true` for a key-only event. Nothing
  /// of its old row, which was another viewer's.
  public var arrivalMembers: [UInt8] { rewritten(as: "insert", keeping: "new") }

  /// The payload's top-level members' values, by name.
  private var memberValues: [String: ArraySlice<UInt8>] {
    let start = JSONMemberScanner.skipWhitespace(payload, 0)
    var values: [String: ArraySlice<UInt8>] = [:]
    for member in JSONMemberScanner.members(of: payload, objectAt: start).members {
      values[name(of: member)] = payload[Int(member.valueStart)..<Int(member.valueEnd)]
    }
    return values
  }

  /// The members of the event as a removal of its old row (``EventForm/asRemoval``):
  /// `table`, `op: "delete"`, `key`, `mtime`, `new: null`, `old` (the old row
  /// as the trigger wrote it: whole, or its owner column alone when the event
  /// is key-only) and `truncated: true` for a key-only event. The payload's
  /// values are spliced, and nothing of its new row: a viewer whose row left
  /// them learns that it left, never what it became.
  public var removalMembers: [UInt8] { rewritten(as: "delete", keeping: "old") }

  /// The event as `op` with only the row `kept` ("new" or "old"), the other
  /// null: the payload's table, key, mtime and that row spliced, and
  /// `truncated: true` for a key-only event.
  private func rewritten(as op: String, keeping kept: String) -> [UInt8] {
    guard !isRefused else { return [] }
    let values = memberValues
    let row = values[kept].map(Array.init) ?? Array("null".utf8)
    var members: [UInt8] = []
    members.reserveCapacity(payload.count)
    members += Array(#""table":"#.utf8) + (values["table"] ?? [])
    members += Array(",\"op\":\"\(op)\",\"key\":".utf8) + (values["key"] ?? [])
    members += Array(#","mtime":"#.utf8) + (values["mtime"] ?? [])
    members += Array(",\"new\":".utf8) + (kept == "new" ? row : Array("null".utf8))
    members += Array(",\"old\":".utf8) + (kept == "old" ? row : Array("null".utf8))
    if truncated { members += Array(#","truncated":true"#.utf8) }
    return members
  }
}
