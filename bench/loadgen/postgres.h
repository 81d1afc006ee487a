/*
 * postgres: the load generator's libpq side (--pg): one connection for the
 * commit and the PostgreSQL figures.
 */
#ifndef LOADGEN_POSTGRES_H
#define LOADGEN_POSTGRES_H

#include <libpq-fe.h>

#include "buf.h"

/* Connects with --pg; NULL when --pg was not given. Dies if it fails. */
PGconn *pg_connect(void);

/* PostgreSQL client backends in use, by user, excluding our own connection:
 * {"user": count, ..} appended to json, their sum in *total. A failed query
 * is noted on stderr and gives {} and 0. */
void pg_connections(PGconn *pg, buf_t *json, int *total);

#endif
