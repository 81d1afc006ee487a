#include "postgres.h"

#include <stdlib.h>

#include "options.h"
#include "util.h"

PGconn *pg_connect(void) {
  if (!cfg.pg) return NULL;
  PGconn *pg = PQconnectdb(cfg.pg);
  if (PQstatus(pg) != CONNECTION_OK) die("PostgreSQL connection failed: %s", PQerrorMessage(pg));
  return pg;
}

void pg_connections(PGconn *pg, buf_t *json, int *total) {
  PGresult *r = PQexec(pg, "select coalesce(usename, '?'), count(*) from pg_stat_activity "
                           "where backend_type = 'client backend' and pid <> pg_backend_pid() group by 1 order by 1");
  *total = 0;
  buf_printf(json, "{");
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); i++) {
      int count = atoi(PQgetvalue(r, i, 1));
      *total += count;
      buf_printf(json, "%s\"%s\":%d", i ? "," : "", PQgetvalue(r, i, 0), count);
    }
  } else {
    note("pg_stat_activity query failed: %s", PQerrorMessage(pg));
  }
  buf_printf(json, "}");
  PQclear(r);
}
