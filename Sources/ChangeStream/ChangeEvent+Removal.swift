extension ChangeEvent {
  /// The members of the event as a removal of its old row (``EventForm/asRemoval``):
  /// `table`, `op: "delete"`, `key`, `mtime`, `new: null`, `old` (the old row
  /// as the trigger wrote it: whole, or its owner column alone when the event
  /// is key-only) and `truncated: true` for a key-only event. The payload's
  /// values are spliced, and nothing of its new row: a viewer whose row left
  /// them learns that it left, never what it became.
  public var removalMembers: [UInt8] {
    guard !isRefused else { return [] }
    let start = JSONMemberScanner.skipWhitespace(payload, 0)
    var values: [String: ArraySlice<UInt8>] = [:]
    for member in JSONMemberScanner.members(of: payload, objectAt: start).members {
      values[name(of: member)] = payload[Int(member.valueStart)..<Int(member.valueEnd)]
    }
    var members: [UInt8] = []
    members.reserveCapacity(payload.count)
    members += Array(#""table":"#.utf8) + (values["table"] ?? [])
    members += Array(#","op":"delete","key":"#.utf8) + (values["key"] ?? [])
    members += Array(#","mtime":"#.utf8) + (values["mtime"] ?? [])
    members += Array(#","new":null,"old":"#.utf8)
    members += values["old"].map(Array.init) ?? Array("null".utf8)
    if truncated { members += Array(#","truncated":true"#.utf8) }
    return members
  }
}
