#!/bin/sh
# Applies every *.sql beside this script to DBNAME, in name order. Each file is
# idempotent, so this also upgrades an existing database without losing rows.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DBNAME" >&2
  exit 2
fi
db=$1
here=$(cd "$(dirname "$0")" && pwd)
for file in "$here"/*.sql; do
  psql -X -q -v ON_ERROR_STOP=1 -v DBNAME="$db" -d "$db" -f "$file"
done
