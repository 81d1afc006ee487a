/*
 * buf: a growable byte buffer, always NUL-terminated once it holds memory
 * (so a body can be searched with strstr). A zeroed buf_t is an empty one.
 * Growth dies when out of memory; nothing here fails otherwise.
 */
#ifndef LOADGEN_BUF_H
#define LOADGEN_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
  char *p; /* NULL until something is reserved */
  size_t len, cap;
} buf_t;

/* Makes room for `extra` more bytes and the terminator (capacity doubles). */
void buf_reserve(buf_t *b, size_t extra);

void buf_append(buf_t *b, const void *data, size_t n);

void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Drops the first n bytes (all of them if n >= len). */
void buf_consume(buf_t *b, size_t n);

/* Empties it and keeps the memory. */
void buf_clear(buf_t *b);

/* Frees the memory: b is an empty buffer again. */
void buf_free(buf_t *b);

#endif
