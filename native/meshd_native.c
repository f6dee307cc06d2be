/*
 * meshd_native: the few Linux socket operations Node.js does not expose, for capture mode.
 *
 *   getOriginalDst(fd)            -> { address, port, family }   getsockopt SO_ORIGINAL_DST
 *   setMark(fd, mark)             -> undefined                   setsockopt SO_MARK
 *   openSocket(netnsPath|null, family, mark[, transparent]) -> fd  a TCP socket created inside a netns
 *   listenSocket(netnsPath|null, host, port, backlog, mark, reusePort) -> fd  bound and listening
 *
 * Sockets are created inside a network namespace by switching the calling thread into it with
 * setns(2), creating the socket, and switching back before returning; a socket keeps the
 * namespace it was created in. The fds are non-blocking and close-on-exec, ready for
 * net.Server.listen({fd}) or new net.Socket({fd}). Errors throw with the errno name and text.
 *
 * A transparent socket (IP_TRANSPARENT / IPV6_TRANSPARENT, needs CAP_NET_ADMIN) may bind an
 * address that is not local, so an inbound dial to the app can carry the original client's IP as
 * its source, as ztunnel's in-pod mode does; replies find their way back through the pod's
 * connmark 0x111 / routing table 100 rules.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  char code[32];
  snprintf(code, sizeof code, "E%d", err);
  const char *name = NULL;
  switch (err) {
    case EPERM: name = "EPERM"; break;
    case EACCES: name = "EACCES"; break;
    case ENOENT: name = "ENOENT"; break;
    case EADDRINUSE: name = "EADDRINUSE"; break;
    case EADDRNOTAVAIL: name = "EADDRNOTAVAIL"; break;
    case EINVAL: name = "EINVAL"; break;
    case EBADF: name = "EBADF"; break;
    case ENOTSOCK: name = "ENOTSOCK"; break;
    case ENOPROTOOPT: name = "ENOPROTOOPT"; break;
    default: name = code; break;
  }
  napi_throw_error(env, name, msg);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* Copies a JS string argument (or null/undefined -> empty). Returns 0 on type error. */
static int arg_str(napi_env env, napi_value v, char *buf, size_t len) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) {
    buf[0] = '\0';
    return 1;
  }
  size_t n;
  return napi_get_value_string_utf8(env, v, buf, len, &n) == napi_ok;
}

static napi_value GetOriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || !arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "getOriginalDst(fd): fd must be a number");
    return NULL;
  }
  char addr[INET6_ADDRSTRLEN];
  int port;
  const char *family;
  struct sockaddr_in in4;
  socklen_t len4 = sizeof in4;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &in4, &len4) == 0) {
    inet_ntop(AF_INET, &in4.sin_addr, addr, sizeof addr);
    port = ntohs(in4.sin_port);
    family = "IPv4";
  } else {
    int err4 = errno;
    struct sockaddr_in6 in6;
    socklen_t len6 = sizeof in6;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &in6, &len6) != 0) {
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", err4);
    }
    inet_ntop(AF_INET6, &in6.sin6_addr, addr, sizeof addr);
    port = ntohs(in6.sin6_port);
    family = "IPv6";
  }
  napi_value result, v;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, addr, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, result, "address", v);
  napi_create_int32(env, port, &v);
  napi_set_named_property(env, result, "port", v);
  napi_create_string_utf8(env, family, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, result, "family", v);
  return result;
}

static napi_value SetMark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, mark;
  if (argc < 2 || !arg_int(env, argv[0], &fd) || !arg_int(env, argv[1], &mark)) {
    napi_throw_type_error(env, NULL, "setMark(fd, mark): both must be numbers");
    return NULL;
  }
  uint32_t m = (uint32_t)mark;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m) != 0) return throw_errno(env, "setsockopt(SO_MARK)", errno);
  return NULL;
}

/* Enters netns `path` (if non-empty), runs socket(2), returns to the original netns. */
static int socket_in_netns(const char *path, int family, int *out_fd, const char **what) {
  int orig = -1, target = -1, fd = -1, err = 0;
  if (path[0] != '\0') {
    orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) { *what = "open(/proc/self/ns/net)"; return errno; }
    target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0) { err = errno; *what = "open(netns)"; close(orig); return err; }
    if (setns(target, CLONE_NEWNET) != 0) { err = errno; *what = "setns(netns)"; close(orig); close(target); return err; }
  }
  fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { err = errno; *what = "socket"; }
  if (path[0] != '\0') {
    if (setns(orig, CLONE_NEWNET) != 0 && err == 0) { err = errno; *what = "setns(back)"; }
    close(orig);
    close(target);
  }
  if (err != 0) {
    if (fd >= 0) close(fd);
    return err;
  }
  *out_fd = fd;
  return 0;
}

static napi_value OpenSocket(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[4096];
  int32_t family6 = 0, mark = 0, transparent = 0;
  if (argc < 3 || !arg_str(env, argv[0], path, sizeof path) || !arg_int(env, argv[1], &family6) || !arg_int(env, argv[2], &mark) ||
      (argc >= 4 && !arg_int(env, argv[3], &transparent))) {
    napi_throw_type_error(env, NULL, "openSocket(netnsPath|null, family 4|6, mark[, transparent 0|1])");
    return NULL;
  }
  int fd;
  const char *what = "";
  int err = socket_in_netns(path, family6 == 6 ? AF_INET6 : AF_INET, &fd, &what);
  if (err != 0) return throw_errno(env, what, err);
  if (mark != 0) {
    uint32_t m = (uint32_t)mark;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m) != 0) { what = "setsockopt(SO_MARK)"; err = errno; }
  }
  if (!err && transparent) {
    int one = 1;
    int rc = family6 == 6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                          : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
    if (rc != 0) { what = "setsockopt(IP_TRANSPARENT)"; err = errno; }
  }
  if (err) {
    close(fd);
    return throw_errno(env, what, err);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value ListenSocket(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[4096], host[INET6_ADDRSTRLEN];
  int32_t port = 0, backlog = 128, mark = 0, reuse = 0;
  if (argc < 6 || !arg_str(env, argv[0], path, sizeof path) || !arg_str(env, argv[1], host, sizeof host) ||
      !arg_int(env, argv[2], &port) || !arg_int(env, argv[3], &backlog) || !arg_int(env, argv[4], &mark) ||
      !arg_int(env, argv[5], &reuse)) {
    napi_throw_type_error(env, NULL, "listenSocket(netnsPath|null, host, port, backlog, mark, reusePort)");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t sslen;
  int family;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    family = AF_INET;
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    sslen = sizeof *in4;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    sslen = sizeof *in6;
  } else {
    napi_throw_type_error(env, NULL, "listenSocket: host must be an IPv4 or IPv6 address");
    return NULL;
  }
  int fd;
  const char *what = "";
  int err = socket_in_netns(path, family, &fd, &what);
  if (err != 0) return throw_errno(env, what, err);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) { what = "setsockopt(SO_REUSEPORT)"; err = errno; }
  if (!err && mark != 0) {
    uint32_t m = (uint32_t)mark;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m) != 0) { what = "setsockopt(SO_MARK)"; err = errno; }
  }
  if (!err && bind(fd, (struct sockaddr *)&ss, sslen) != 0) { what = "bind"; err = errno; }
  if (!err && listen(fd, backlog) != 0) { what = "listen"; err = errno; }
  if (err) {
    close(fd);
    return throw_errno(env, what, err);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"getOriginalDst", NULL, GetOriginalDst, NULL, NULL, NULL, napi_default, NULL},
      {"setMark", NULL, SetMark, NULL, NULL, NULL, napi_default, NULL},
      {"openSocket", NULL, OpenSocket, NULL, NULL, NULL, napi_default, NULL},
      {"listenSocket", NULL, ListenSocket, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
