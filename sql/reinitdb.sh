#!/bin/sh
# (Re)creates database DBNAME from the SQL files beside this script: drops it
# if it exists, creates it, and applies every *.sql in name order. Connection
# settings come from the usual libpq variables (PGHOST, PGPORT, PGUSER), as a
# role that may create databases and roles.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DBNAME" >&2
  exit 2
fi
db=$1
here=$(cd "$(dirname "$0")" && pwd)
psql -X -q -v ON_ERROR_STOP=1 -d postgres -v db="$db" <<'SQL'
select format('drop database if exists %I with (force)', :'db') \gexec
select format('create database %I', :'db') \gexec
SQL
"$here/migrate.sh" "$db"
