/*
 * latency: a growing list of durations (ns) and its summary in the output's
 * JSON. A zeroed lat_t is an empty list.
 */
#ifndef LOADGEN_LATENCY_H
#define LOADGEN_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct {
  int64_t *lat; /* ns */
  size_t nlat, caplat;
} lat_t;

/* Appends one duration (grows by doubling; dies when out of memory). */
void lat_push(lat_t *l, int64_t v);

/* Sorts the list in place: lat_pct and the smallest/largest need it. */
void lat_sort(lat_t *l);

/* Nearest-rank percentile (q in 0..1) of a sorted list, in ns; -1 if empty. */
int64_t lat_pct(const lat_t *l, double q);

/* Sorts the list, then writes {"count","p50","p90","p99","max","min","mean"}
 * in µs with one decimal (-1 and -0.0 when empty, as run_bench.py expects). */
void json_lat(buf_t *j, lat_t *l);

#endif
