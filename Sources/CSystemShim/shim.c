#define _GNU_SOURCE
#include "CSystemShim.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const uint32_t pbp_EPOLLIN = EPOLLIN;
const uint32_t pbp_EPOLLRDHUP = EPOLLRDHUP;
const uint32_t pbp_EPOLLONESHOT = EPOLLONESHOT;
const uint32_t pbp_EPOLLEXCLUSIVE = EPOLLEXCLUSIVE;
const uint32_t pbp_EPOLLHUP = EPOLLHUP;
const uint32_t pbp_EPOLLERR = EPOLLERR;

int pbp_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int pbp_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int pbp_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int pbp_epoll_watch(int epfd, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
  if (errno != ENOENT) return -1;
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int pbp_epoll_disarm(int epfd, int fd) {
  struct epoll_event ev = {.events = EPOLLONESHOT, .data.u64 = 0};
  return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

int pbp_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
  struct epoll_event evs[256];
  if (max > 256) max = 256;
  int n = epoll_wait(epfd, evs, max, timeout_ms);
  for (int i = 0; i < n; i++) {
    events[i] = evs[i].events;
    data[i] = evs[i].data.u64;
  }
  return n;
}

void pbp_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

int pbp_accept_nonblocking(int listen_fd) {
  return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

pid_t pbp_spawn_with_fds(const char *path, char *const argv[], const int *fds, int fd_count) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none;
  pid_t pid = -1;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  // The child starts with no blocked signals and default handlers, whatever the master had.
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  for (int i = 0; i < fd_count; i++) {
    if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&actions, fds[i], 3 + i);
  }
  int rc = posix_spawn(&pid, path, &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc == 0 ? pid : -rc;
}

static void fill(sigset_t *set, const int *signals, int count) {
  sigemptyset(set);
  for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
}

int pbp_block_signals(const int *signals, int count) {
  sigset_t set;
  fill(&set, signals, count);
  return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int pbp_wait_signal(const int *signals, int count, int timeout_ms) {
  sigset_t set;
  fill(&set, signals, count);
  struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L};
  int sig = sigtimedwait(&set, NULL, timeout_ms < 0 ? NULL : &ts);
  return sig;
}

int pbp_signalfd(const int *signals, int count) {
  sigset_t set;
  fill(&set, signals, count);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
  return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int pbp_signalfd_read(int fd) {
  struct signalfd_siginfo info;
  ssize_t n = read(fd, &info, sizeof info);
  return n == (ssize_t)sizeof info ? (int)info.ssi_signo : 0;
}

int pbp_die_with_parent(int signal) { return prctl(PR_SET_PDEATHSIG, signal); }

int pbp_move_fd_high(int fd) {
  if (fd < 0) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  if (moved < 0) return fd;
  close(fd);
  return moved;
}

int pbp_shared_memory_create(size_t size) {
  int fd = memfd_create("pbp-shared", MFD_CLOEXEC);
  if (fd < 0) return -1;
  if (ftruncate(fd, (off_t)size) != 0) {
    close(fd);
    return -1;
  }
  return pbp_move_fd_high(fd);
}

void *pbp_shared_memory_map(int fd, size_t size) {
  void *address = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return address == MAP_FAILED ? NULL : address;
}

uint64_t pbp_atomic_load(const uint64_t *address) { return __atomic_load_n(address, __ATOMIC_ACQUIRE); }
void pbp_atomic_store(uint64_t *address, uint64_t value) { __atomic_store_n(address, value, __ATOMIC_RELEASE); }
void pbp_atomic_add(uint64_t *address, int64_t delta) { __atomic_add_fetch(address, (uint64_t)delta, __ATOMIC_ACQ_REL); }
