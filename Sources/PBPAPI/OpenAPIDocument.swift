import JSON

/// The API described for tools (`GET /api/openapi.json`), with the
/// configured tables as the only values of `{table}`.
enum OpenAPIDocument {
  static func json(tables: [String]) -> String {
    let tableEnum = "[" + tables.map(JSONWriter.quoted).joined(separator: ",") + "]"
    let error = ##"{"$ref":"#/components/responses/Error"}"##
    return """
      {"openapi":"3.1.0",
       "info":{"title":"PBP","version":"1","description":"Live PostgreSQL rows over HTTP: CRUD on the configured tables and long-polls for their changes."},
       "paths":{
        "/api/{table}":{
         "parameters":[{"$ref":"#/components/parameters/table"}],
         "get":{"summary":"The rows, ordered by key","parameters":[
           {"name":"limit","in":"query","schema":{"type":"integer","minimum":1,"maximum":10000,"default":1000}},
           {"name":"after","in":"query","description":"Keyset pagination: rows whose key is greater","schema":{"type":"string"}}],
          "responses":{"200":{"description":"The rows; PBP-Cursor is the cursor to poll from","headers":{"PBP-Cursor":{"schema":{"type":"string"}},"PBP-Key":{"description":"The key column","schema":{"type":"string"}},"ETag":{"schema":{"type":"string"}}},
            "content":{"application/json":{"schema":{"type":"array","items":{"$ref":"#/components/schemas/Row"}}}}},
           "304":{"description":"Unchanged since the ETag given in If-None-Match"},
           "400":\(error),"404":\(error),"503":\(error)}},
         "post":{"summary":"Insert a row","requestBody":{"$ref":"#/components/requestBodies/Row"},
          "responses":{"201":{"description":"The new row","headers":{"Location":{"schema":{"type":"string"}}},"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Row"}}}},
           "400":\(error),"404":\(error),"409":\(error),"413":\(error),"415":\(error),"422":\(error),"503":\(error)}}},
        "/api/{table}/{id}":{
         "parameters":[{"$ref":"#/components/parameters/table"},{"name":"id","in":"path","required":true,"schema":{"type":"string"}}],
         "get":{"summary":"One row","responses":{"200":{"description":"The row","headers":{"PBP-Key":{"description":"The key column","schema":{"type":"string"}}},"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Row"}}}},"404":\(error),"503":\(error)}},
         "put":{"summary":"Replace a row's writable columns","requestBody":{"$ref":"#/components/requestBodies/Row"},
          "responses":{"200":{"description":"The row","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Row"}}}},"400":\(error),"404":\(error),"409":\(error),"413":\(error),"415":\(error),"422":\(error),"503":\(error)}},
         "patch":{"summary":"Change some of a row's columns","requestBody":{"$ref":"#/components/requestBodies/Row"},
          "responses":{"200":{"description":"The row","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Row"}}}},"400":\(error),"404":\(error),"409":\(error),"413":\(error),"415":\(error),"422":\(error),"503":\(error)}},
         "delete":{"summary":"Delete a row","responses":{"204":{"description":"Deleted"},"404":\(error),"503":\(error)}}},
        "/api/changes":{
         "get":{"summary":"Long-poll for changes to one table","parameters":[
           {"name":"cursor","in":"query","schema":{"type":"string"}},
           {"name":"table","in":"query","required":true,"schema":{"type":"string","enum":\(tableEnum)}},
           {"name":"timeout","in":"query","schema":{"type":"number"}}],
          "responses":{"200":{"$ref":"#/components/responses/Changes"},"400":\(error),"404":\(error),"409":{"$ref":"#/components/responses/Reset"}}},
         "post":{"summary":"Long-poll for changes matching any of several subscriptions",
          "requestBody":{"required":true,"content":{"application/json":{"schema":{"$ref":"#/components/schemas/ChangePoll"}}}},
          "responses":{"200":{"$ref":"#/components/responses/Changes"},"400":\(error),"404":\(error),"409":{"$ref":"#/components/responses/Reset"},"413":\(error),"415":\(error)}}},
        "/api/_status":{"get":{"summary":"The worker pool's state (loopback clients only)","responses":{"200":{"description":"Workers, parked polls, events delivered, database connections","content":{"application/json":{"schema":{"type":"object"}}}},"403":\(error)}}},
        "/api/_metrics":{"get":{"summary":"The same in Prometheus text format (loopback clients only)","responses":{"200":{"description":"Metrics","content":{"text/plain":{"schema":{"type":"string"}}}},"403":\(error)}}},
        "/api/openapi.json":{"get":{"summary":"This document","responses":{"200":{"description":"OpenAPI 3.1","content":{"application/json":{"schema":{"type":"object"}}}}}}}
       },
       "components":{
        "parameters":{"table":{"name":"table","in":"path","required":true,"schema":{"type":"string","enum":\(tableEnum)}}},
        "requestBodies":{"Row":{"required":true,"content":{
          "application/json":{"schema":{"$ref":"#/components/schemas/Row"}},
          "application/x-www-form-urlencoded":{"schema":{"type":"object","additionalProperties":{"type":"string"}}}}}},
        "responses":{
         "Error":{"description":"An error","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}},
         "Changes":{"description":"Events after the cursor, or none at the timeout","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Changes"}}}},
         "Reset":{"description":"The cursor is gone: reload the snapshot, then poll from its cursor","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}}},
        "schemas":{
         "Row":{"type":"object","description":"Column values; the key and mtime are maintained by the database","additionalProperties":true},
         "Error":{"type":"object","required":["error","message"],"properties":{"error":{"type":"string"},"message":{"type":"string"},"cursor":{"type":"string"}}},
         "Subscription":{"type":"object","required":["table"],"properties":{"table":{"type":"string","enum":\(tableEnum)},"where":{"type":"object","additionalProperties":{"type":["string","number","boolean"]}}}},
         "ChangePoll":{"type":"object","required":["subscriptions"],"properties":{"cursor":{"type":["string","null"]},"timeout":{"type":"number"},"subscriptions":{"type":"array","minItems":1,"items":{"$ref":"#/components/schemas/Subscription"}}}},
         "Event":{"type":"object","required":["table","op","key","cursor","matches"],"properties":{
           "table":{"type":"string"},"op":{"type":"string","enum":["insert","update","delete"]},"key":{},"mtime":{"type":"string"},
           "new":{"oneOf":[{"$ref":"#/components/schemas/Row"},{"type":"null"}]},"old":{"oneOf":[{"$ref":"#/components/schemas/Row"},{"type":"null"}]},
           "truncated":{"type":"boolean"},"cursor":{"type":"string"},"matches":{"type":"array","items":{"type":"integer"}}}},
         "Changes":{"type":"object","required":["cursor","events"],"properties":{"cursor":{"type":"string"},"events":{"type":"array","items":{"$ref":"#/components/schemas/Event"}}}}
        }}}
      """
  }
}
