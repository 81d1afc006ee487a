/*
 * util: the clock, messages on stderr, allocation that cannot return NULL,
 * and a small deterministic random generator.
 */
#ifndef LOADGEN_UTIL_H
#define LOADGEN_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in ns: system-wide, so the parent's commit time and the
 * worker processes' arrival times are comparable. */
int64_t now_ns(void);

/* Prints "loadgen: ERROR: ..." on stderr and exits with status 2. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Prints "loadgen: ..." on stderr (progress and errors that are counted). */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Zeroed memory (calloc); dies when out of memory. Never NULL, even for 0. */
void *xmalloc(size_t n);

/* realloc that dies when out of memory. */
void *xrealloc(void *p, size_t n);

/* xorshift64*: the next number from state *s (which must not be 0). */
uint64_t rng_next(uint64_t *s);

#endif
