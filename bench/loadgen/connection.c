#include "connection.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "options.h"
#include "util.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

int src_retries;

static struct sockaddr_in target_addr(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, cfg.host, &a.sin_addr) != 1) die("bad --host %s (an IPv4 address)", cfg.host);
  return a;
}

/* With IP_BIND_ADDRESS_NO_PORT the port is chosen at connect time, so the
 * kernel only needs the 4-tuple to be unique: each source address gives its
 * own ~28,000 ephemeral ports towards the one server port. */
int open_conn(int *src, int nsources) { return open_conn_to(cfg.port, src, nsources); }

int open_conn_to(int port, int *src, int nsources) {
  struct sockaddr_in dst = target_addr(port);
  for (int attempt = 0; attempt < 16; attempt++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nsources > 1 || *src > 0) {
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      struct sockaddr_in me;
      memset(&me, 0, sizeof me);
      me.sin_family = AF_INET;
      me.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)*src);
      if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
        int e = errno;
        close(fd);
        return -e;
      }
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0 || errno == EINPROGRESS) return fd;
    int e = errno;
    close(fd);
    if (e != EADDRNOTAVAIL) return -e;
    src_retries++;
    *src = (*src + 1) % 16; /* this address ran out of ports: try the next one */
  }
  return -EADDRNOTAVAIL;
}

int conn_connect_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

int send_pending(int fd, const buf_t *out, size_t *off) {
  while (*off < out->len) {
    ssize_t w = send(fd, out->p + *off, out->len - *off, MSG_NOSIGNAL);
    if (w > 0) {
      *off += (size_t)w;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return -1;
  }
  return 1;
}

void conn_close(conn_t *c, int epfd, int rst) {
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (rst)
      close_rst(c->fd);
    else
      close(c->fd);
  }
  c->fd = -1;
  c->state = CS_DOWN;
  buf_clear(&c->in);
}

void close_rst(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

int nsources_for(int n) {
  if (cfg.sources > 0) return cfg.sources;
  /* About 28,000 ephemeral ports per source address: use one more address
   * per 14,000 connections, so that what earlier runs left in TIME_WAIT
   * cannot make us run short. */
  int k = (n + 13999) / 14000;
  return k < 1 ? 1 : k > 16 ? 16 : k;
}

void ep_set(int epfd, int fd, uint32_t events, void *ptr, int add) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0 && add == 0 && errno == ENOENT)
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

long nofile_limit(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  return (long)rl.rlim_cur;
}
