#include "latency.h"

#include <math.h>
#include <stdlib.h>

#include "util.h"

void lat_push(lat_t *l, int64_t v) {
  if (l->nlat == l->caplat) {
    l->caplat = l->caplat ? l->caplat * 2 : 4096;
    l->lat = xrealloc(l->lat, l->caplat * sizeof(int64_t));
  }
  l->lat[l->nlat++] = v;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

void lat_sort(lat_t *l) { qsort(l->lat, l->nlat, sizeof(int64_t), cmp_i64); }

int64_t lat_pct(const lat_t *l, double q) {
  size_t n = l->nlat;
  if (n == 0) return -1;
  size_t rank = (size_t)ceil(q * (double)n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return l->lat[rank - 1];
}

void json_lat(buf_t *j, lat_t *l) {
  lat_sort(l);
  double sum = 0;
  for (size_t i = 0; i < l->nlat; i++) sum += (double)l->lat[i];
  buf_printf(j,
             "{\"count\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"min\":%.1f,\"mean\":%.1f}",
             l->nlat, lat_pct(l, 0.5) / 1e3, lat_pct(l, 0.9) / 1e3, lat_pct(l, 0.99) / 1e3,
             l->nlat ? l->lat[l->nlat - 1] / 1e3 : -1.0, l->nlat ? l->lat[0] / 1e3 : -1.0,
             l->nlat ? sum / (double)l->nlat / 1e3 : -1.0);
}
