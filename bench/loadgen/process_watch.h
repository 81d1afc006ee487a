/*
 * process_watch: the CPU time and memory of the process trees under test
 * (`--watch NAME=PID`: nginx, pbp-fcgi, notifyd, postmaster, the load
 * generator itself), read from /proc. A process that is gone, or a file that
 * cannot be read, counts as 0: a tree is whatever is alive when sampled.
 */
#ifndef LOADGEN_PROCESS_WATCH_H
#define LOADGEN_PROCESS_WATCH_H

#include <stdint.h>

#include "buf.h"

#define WATCH_MAX 16

typedef struct {
  int64_t rss_kb, pss_kb;
} mem_t;

/* Adds a watched tree from "NAME=PID" (NAME=self: this process). Returns -1
 * if the spec is malformed; dies when WATCH_MAX are already watched. */
int watch_add(const char *spec);

/* How many trees are watched, and the name of tree g (0 <= g < count). */
int watch_count(void);
const char *watch_name(int g);

/* The CPU time (ns, from every thread's schedstat: exact, unlike the 10 ms
 * ticks of /proc/PID/stat) of each watched tree, root and all descendants,
 * into out[0..watch_count()). */
void sample_cpu(int64_t *out);

/* RSS and PSS (smaps_rollup) of each watched tree: the totals into
 * out[0..watch_count()), and {"NAME": {"rss_kb", "pss_kb", "processes":
 * [{"pid", "comm", "rss_kb", "pss_kb"}, ..]}, ..} appended to json. */
void sample_mem(mem_t *out, buf_t *json);

#endif
