#!/bin/sh
# Applies every *.sql beside this script to DBNAME, in name order. Each file is
# idempotent and runs as one transaction, so this also upgrades an existing
# database, while it serves, without losing rows or a write's stamp.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DBNAME" >&2
  exit 2
fi
db=$1
here=$(cd "$(dirname "$0")" && pwd)
for file in "$here"/*.sql; do
  psql -X -q -1 -v ON_ERROR_STOP=1 -v DBNAME="$db" -d "$db" -f "$file"
done
