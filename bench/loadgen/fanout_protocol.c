#include "fanout_protocol.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "util.h"

int write_all(int fd, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pf = {fd, POLLOUT, 0};
        poll(&pf, 1, 1000);
        continue;
      }
      return -1;
    }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

int read_all(int fd, void *p, size_t n, int timeout_ms) {
  char *s = p;
  int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
  while (n) {
    int64_t left = (deadline - now_ns()) / 1000000;
    if (left <= 0) return -1;
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t r = read(fd, s, n);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return -1;
    s += r;
    n -= (size_t)r;
  }
  return 0;
}
